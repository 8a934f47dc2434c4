// Progressive enhancement only: every page works without this file.
// - a form marked data-once disables its button once sent (the idempotency key already
//   makes a second submit harmless; this just says the first one is on its way);
// - the filters of the search page apply as soon as a choice changes.
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-once")) return;
  const button = form.querySelector("button[type=submit]");
  if (!button) return;
  window.setTimeout(() => {
    button.disabled = true;
    button.dataset.label = button.textContent;
    button.textContent = document.documentElement.lang === "en" ? "Submitting…" : "提交中…";
  }, 0);
});
window.addEventListener("pageshow", () => {
  // Back to a page kept in the browser's cache: its buttons work again.
  for (const button of document.querySelectorAll("button[data-label]")) {
    button.disabled = false;
    button.textContent = button.dataset.label;
  }
});
for (const form of document.querySelectorAll("form[data-autosubmit]")) {
  for (const select of form.querySelectorAll("select, input[type=checkbox]")) {
    select.addEventListener("change", () => form.requestSubmit());
  }
}
