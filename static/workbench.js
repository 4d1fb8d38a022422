// Small, dependency-free behaviours shared by the screens (htmx does the requests).
document.addEventListener("click", (ev) => {
  const seek = ev.target.closest("[data-seek]");
  if (!seek) return;
  const player = document.querySelector("video[data-player]");
  if (player) { player.currentTime = parseFloat(seek.dataset.seek); player.focus(); }
});

// Keyboard shortcuts: an element with data-hotkey="x" is clicked (buttons) or focused (fields)
// when "x" is pressed outside a text field. Escape leaves a field so shortcuts work again.
document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target;
  if (t instanceof Element && t.closest("input, textarea, select, [contenteditable]")) {
    if (ev.key === "Escape") t.blur();
    return;
  }
  const el = document.querySelector(`[data-hotkey="${CSS.escape(ev.key)}"]`);
  if (!el) return;
  ev.preventDefault();
  if (el.matches("input, textarea, select")) el.focus(); else el.click();
});

// Reveal / shield media: toggle at once, remember the choice server-side (a form POST without JS).
document.addEventListener("click", (ev) => {
  const btn = ev.target.closest("[data-reveal-toggle]");
  if (!btn || !btn.form) return;
  const box = document.querySelector("[data-shield]");
  if (!box) return;
  ev.preventDefault();
  const shown = !box.classList.toggle("shielded");
  btn.textContent = shown ? "Shield media" : "Reveal media";
  btn.setAttribute("aria-pressed", String(shown));
  btn.value = shown ? "0" : "1";
  const body = new FormData(btn.form);
  body.set("reveal", shown ? "1" : "0");
  fetch(btn.form.action, { method: "POST", body, headers: { "HX-Request": "true" }, credentials: "same-origin" });
});
