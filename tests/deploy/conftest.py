from tests.store.helpers import config, database_url, postgres_url, store  # noqa: F401 - fixtures
