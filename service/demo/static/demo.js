// The demo EHR: pick a patient, compose an order, sign it through the real CDS Hooks
// endpoint, show the cards, and send feedback when a suggestion is taken or a card dismissed.
"use strict";

const INDICATOR_LABELS = { critical: "Critical", warning: "Warning", info: "Info" };
const demo = { patientId: null, serviceId: null, cards: [] };

const byId = (id) => document.getElementById(id);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...children.filter(Boolean));
  return node;
}

async function postJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { error: text }; }
  if (!response.ok) {
    const reason = (data && data.error) || response.statusText;
    throw new Error(`${url} answered ${response.status}: ${reason}`);
  }
  return data;
}

function setStatus(text, kind = "") {
  const status = byId("cds-status");
  status.textContent = text;
  status.className = `cds-status ${kind}`;
}

// ---- patient and order --------------------------------------------------------------

function choosePatient(patientId) {
  demo.patientId = patientId;
  for (const button of document.querySelectorAll(".patient-pick")) {
    button.classList.toggle("selected", button.dataset.patientId === patientId);
  }
  for (const chart of document.querySelectorAll(".chart")) {
    chart.hidden = chart.dataset.patientId !== patientId;
  }
  byId("no-patient").hidden = true;
  byId("order-form").hidden = false;
  clearCards("Cards appear here when you sign an order.");
  describeOrder();
}

function filterPatients() {
  const words = byId("patient-filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  for (const button of document.querySelectorAll(".patient-pick")) {
    const text = button.textContent.toLowerCase();
    button.parentElement.hidden = !words.every((word) => text.includes(word));
  }
}

function orderFromForm() {
  return {
    product: byId("product").value,
    dose: byId("dose").value,
    frequency: byId("frequency").value,
    reason: byId("reason").value,
  };
}

function describeOrder() {
  const product = byId("product").selectedOptions[0];
  const frequency = byId("frequency").selectedOptions[0];
  const reason = byId("reason").selectedOptions[0];
  const indication = byId("reason").value ? ` for ${reason.textContent.toLowerCase()}` : "";
  byId("order-summary").textContent =
    `${product.textContent}: ${byId("dose").value} mg by mouth ${frequency.textContent}${indication}`;
}

function productChanged() {
  byId("dose").value = byId("product").selectedOptions[0].dataset.defaultDose;
  describeOrder();
}

// The id of the service for a hook; the cards shown (and their feedback) are that service's.
async function serviceFor(hook) {
  demo.services = demo.services || {};
  if (!demo.services[hook]) {
    const response = await fetch("/cds-services");
    if (!response.ok) throw new Error(`/cds-services answered ${response.status}`);
    const discovery = await response.json();
    const service = discovery.services.find((s) => s.hook === hook);
    if (!service) throw new Error(`the service declares no ${hook} hook`);
    demo.services[hook] = service.id;
  }
  demo.serviceId = demo.services[hook];
  return demo.serviceId;
}

async function orderSignService() {
  return serviceFor("order-sign");
}

// What the EHR asks when the chart opens: the patient-view service's next steps.
async function askPatientView(event) {
  event.preventDefault();
  clearCards("Opening the chart: asking the CDS service (patient-view)...");
  const buttons = document.querySelectorAll(".patient-view");
  for (const button of buttons) button.disabled = true;
  try {
    const serviceId = await serviceFor("patient-view");
    const hookRequest = await postJson("/demo/api/hook-request",
      { patientId: demo.patientId, hook: "patient-view" });
    const started = performance.now();
    const answer = await postJson(`/cds-services/${serviceId}`, hookRequest);
    await showCards(answer.cards || [], Math.round(performance.now() - started));
  } catch (error) {
    setStatus(String(error.message || error), "error");
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

// Sign the composed order, or (storyOrder) the draft orders of the patient's story.
async function signOrder(event, storyOrder = false) {
  event.preventDefault();
  clearCards("Signing: asking the CDS service...");
  const buttons = document.querySelectorAll("#sign, .sign-story");
  for (const button of buttons) button.disabled = true;
  try {
    const serviceId = await orderSignService();
    const order = storyOrder ? { storyOrder: true } : { order: orderFromForm() };
    const hookRequest = await postJson("/demo/api/hook-request",
      { patientId: demo.patientId, hook: "order-sign", ...order });
    const started = performance.now();
    const answer = await postJson(`/cds-services/${serviceId}`, hookRequest);
    const elapsed = Math.round(performance.now() - started);
    await showCards(answer.cards || [], elapsed);
  } catch (error) {
    setStatus(String(error.message || error), "error");
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

// ---- cards ------------------------------------------------------------------------

function clearCards(text) {
  demo.cards = [];
  byId("cards").replaceChildren();
  byId("action-view").hidden = true;
  setStatus(text);
}

async function showCards(cards, elapsed) {
  demo.cards = cards;
  const details = await postJson("/demo/api/render", { markdown: cards.map((c) => c.detail || "") });
  byId("cards").replaceChildren(...cards.map((card, i) => cardElement(card, details.html[i])));
  if (cards.length === 0) {
    setStatus(`No cards (${elapsed} ms): nothing to check for this order.`, "ok");
  } else {
    setStatus(`${cards.length} card${cards.length > 1 ? "s" : ""} from the CDS service (${elapsed} ms).`);
  }
}

function cardElement(card, detailHtml) {
  const indicator = card.indicator || "info";
  const node = element("article", { class: `card card-${indicator}`, "data-indicator": indicator,
                                    "data-card-uuid": card.uuid || "" });
  node.append(element("header", { class: "card-header" },
    element("span", { class: "badge", text: INDICATOR_LABELS[indicator] || indicator }),
    element("span", { class: "card-summary", text: card.summary || "" })));
  if (detailHtml) {
    const detail = element("div", { class: "card-detail" });
    detail.innerHTML = detailHtml; // rendered server-side from Markdown with raw HTML escaped
    node.append(detail);
  }
  node.append(sourceElement(card.source || {}));
  if (card.suggestions && card.suggestions.length) node.append(suggestionsElement(card, node));
  if (card.links && card.links.length) node.append(linksElement(card.links));
  node.append(element("footer", { class: "card-footer" },
    element("button", { type: "button", class: "dismiss", text: "Dismiss",
                        onclick: () => showOverride(card, node) }),
    element("span", { class: "card-outcome" })));
  return node;
}

function sourceElement(source) {
  const label = source.label || "unknown source";
  const name = isHttpUrl(source.url)
    ? element("a", { href: source.url, target: "_blank", rel: "noopener", text: label })
    : element("span", { text: label });
  return element("p", { class: "card-source" }, "Source: ", name);
}

function suggestionsElement(card, node) {
  const buttons = card.suggestions.map((suggestion) => element("button", {
    type: "button",
    class: `suggestion${suggestion.isRecommended ? " recommended" : ""}`,
    text: suggestion.label,
    onclick: () => acceptSuggestion(card, suggestion, node),
  }));
  return element("div", { class: "card-suggestions" }, ...buttons);
}

function linksElement(links) {
  const anchors = links.filter((link) => isHttpUrl(link.url)).map((link) =>
    element("a", { href: link.url, target: "_blank", rel: "noopener", text: link.label }));
  return element("p", { class: "card-links" }, ...anchors);
}

function isHttpUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url);
}

// ---- feedback ---------------------------------------------------------------------

async function sendFeedback(item) {
  const entry = { ...item, outcomeTimestamp: new Date().toISOString() };
  await postJson(`/cds-services/${demo.serviceId}/feedback`, { feedback: [entry] });
}

function closeCard(node, text) {
  for (const control of node.querySelectorAll("button, select, textarea")) control.disabled = true;
  node.classList.add("resolved");
  node.querySelector(".card-outcome").textContent = text;
}

async function acceptSuggestion(card, suggestion, node) {
  byId("action-title").textContent = `"${suggestion.label}": the change the EHR would make`;
  byId("action-json").textContent = JSON.stringify(suggestion.actions || [], null, 2);
  byId("action-view").hidden = false;
  try {
    await sendFeedback({ card: card.uuid, outcome: "accepted",
                         acceptedSuggestions: [{ id: suggestion.uuid }] });
    closeCard(node, `Accepted: ${suggestion.label} (feedback sent)`);
  } catch (error) {
    node.querySelector(".card-outcome").textContent = `Feedback failed: ${error.message}`;
  }
}

function showOverride(card, node) {
  if (node.querySelector(".override")) return;
  const reasons = card.overrideReasons || [];
  const select = element("select", { class: "override-reason" },
    element("option", { value: "", text: reasons.length ? "Choose a reason" : "(no reasons offered)" }),
    ...reasons.map((coding, i) => element("option", { value: String(i), text: coding.display || coding.code })));
  const comment = element("textarea", { class: "override-comment", rows: "2",
                                        placeholder: "Comment (optional)" });
  const confirm = element("button", { type: "button", class: "confirm-dismiss", text: "Dismiss card",
    onclick: () => overrideCard(card, node, reasons[select.value], comment.value.trim()) });
  node.querySelector(".card-footer").before(element("div", { class: "override" },
    element("label", { text: "Why are you overriding this advice? " }, select), comment, confirm));
}

async function overrideCard(card, node, reason, comment) {
  const item = { card: card.uuid, outcome: "overridden" };
  if (reason || comment) {
    item.overrideReason = {};
    if (reason) item.overrideReason.reason = reason;
    if (comment) item.overrideReason.userComment = comment;
  }
  try {
    await sendFeedback(item);
    closeCard(node, `Overridden${reason ? `: ${reason.display || reason.code}` : ""} (feedback sent)`);
  } catch (error) {
    node.querySelector(".card-outcome").textContent = `Feedback failed: ${error.message}`;
  }
}

// ---- wiring -----------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll(".patient-pick")) {
    button.addEventListener("click", () => choosePatient(button.dataset.patientId));
  }
  byId("patient-filter").addEventListener("input", filterPatients);
  byId("product").addEventListener("change", productChanged);
  for (const id of ["dose", "frequency", "reason"]) byId(id).addEventListener("input", describeOrder);
  byId("order-form").addEventListener("submit", (event) => signOrder(event));
  for (const button of document.querySelectorAll(".sign-story")) {
    button.addEventListener("click", (event) => signOrder(event, true));
  }
  for (const button of document.querySelectorAll(".patient-view")) {
    button.addEventListener("click", askPatientView);
  }
  const requested = new URLSearchParams(location.search).get("patient");
  if (requested && document.querySelector(`.patient-pick[data-patient-id="${CSS.escape(requested)}"]`)) {
    choosePatient(requested);
  }
});
