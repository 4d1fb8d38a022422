// Small, dependency-free behaviours shared by the screens (htmx does the requests).

// Evidence and timeline links: data-seek seeks the player; data-frame also highlights that
// keyframe in the strip; data-patch highlights the patch box drawn over its keyframe.
function markOnly(selector, el) {
  document.querySelectorAll(selector + ".hl").forEach((x) => x.classList.remove("hl"));
  if (el) el.classList.add("hl");
  return el;
}

// A video the player cannot load says so beside the player. A file missing from media storage is checked and
// said by the server (_media_player.html) before any player is drawn, so this is a file the browser cannot
// decode (an upload that is not a video) or a fetch that failed (an expired link, the store not answering).
document.addEventListener(
  "error",
  (ev) => {
    const player = ev.target;
    if (!(player instanceof HTMLVideoElement) || player.nextElementSibling?.dataset.playerError !== undefined) return;
    const note = document.createElement("p");
    note.className = "error";
    note.dataset.playerError = "";
    note.textContent =
      "The browser could not play this video: the file is not a video it can decode, or it could not be fetched (reload the page to try again).";
    player.after(note);
  },
  true,
);

document.addEventListener("click", (ev) => {
  const link = ev.target.closest("[data-seek], [data-patch], [data-frame]");
  if (!link) return;
  const player = document.querySelector("video[data-player]");
  if (link.dataset.seek && player) player.currentTime = parseFloat(link.dataset.seek);
  if (link.dataset.patch) {
    ev.preventDefault();
    const box = markOnly(".patch", document.getElementById("patch-" + link.dataset.patch));
    const figure = box && box.closest("figure");
    const folded = figure && figure.closest("details");
    if (folded) folded.open = true;
    if (figure) figure.scrollIntoView({ block: "center" });
    return;
  }
  if (player && link.dataset.seek) {
    player.focus();
    // A time-only evidence link points at #player (highlighted as the link's target): following it took the
    // focus away again, to the page's body, so Space did not play from the time sought. Focus it once more after.
    if (link.getAttribute("href") === "#player") setTimeout(() => player.focus());
  }
  if (link.dataset.frame) {
    if (link.tagName === "A") ev.preventDefault();
    const frame = markOnly(".strip button", document.getElementById("frame-" + link.dataset.frame));
    if (frame) frame.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
});

// "Enlarge" under a keyframe with patch boxes (_keyframe_patches.html): a copy of the figure in a modal dialog, its
// picture as large as the window allows (the boxes and their numbers scale with it). Esc or "Close" closes it and
// the focus goes back to the button. The copy is shielded as its page is (blurred until "Reveal media").
function keyframeDialog() {
  let dialog = document.getElementById("kf-zoom");
  if (dialog) return dialog;
  dialog = document.createElement("dialog");
  dialog.id = "kf-zoom";
  dialog.className = "kf-zoom";
  dialog.addEventListener("click", (ev) => { if (ev.target === dialog) dialog.close(); });  // a click beside it
  dialog.addEventListener("close", () => {
    if (dialog.opener && dialog.opener.isConnected) dialog.opener.focus();
    dialog.replaceChildren();
  });
  document.body.append(dialog);
  return dialog;
}

document.addEventListener("click", (ev) => {
  const button = ev.target.closest("[data-kf-enlarge]");
  if (!button) return;
  const figure = button.closest("figure");
  const picture = figure && figure.querySelector(".kf-frame img");
  if (!picture) return;
  const dialog = keyframeDialog();
  const copy = figure.cloneNode(true);
  // ids stay the page's own (CoT evidence links find the boxes there); the copy's buttons are not the page's either
  for (const el of [copy, ...copy.querySelectorAll("[id]")]) el.removeAttribute("id");
  copy.querySelectorAll(".kf-enlarge").forEach((el) => el.remove());
  copy.querySelectorAll("figcaption button").forEach((el) => el.replaceWith(...el.childNodes));
  const close = document.createElement("button");
  close.type = "button";
  close.className = "kf-zoom-close";
  close.textContent = "Close (Esc)";
  close.addEventListener("click", () => dialog.close());
  dialog.replaceChildren(close, copy);
  dialog.setAttribute("aria-label", button.getAttribute("aria-label") || "Keyframe");
  dialog.classList.toggle("shielded", Boolean(figure.closest(".shielded")));
  const big = copy.querySelector(".kf-frame img");
  const ratio = (picture.naturalWidth || picture.width) / (picture.naturalHeight || picture.height || 1);
  big.style.width = `${Math.floor(Math.min(window.innerWidth * 0.9, window.innerHeight * 0.75 * ratio))}px`;
  big.style.height = "auto";
  dialog.opener = button;
  dialog.showModal();
  close.focus();
});

// Keyboard shortcuts: an element with data-hotkey="x" is clicked (buttons, radios) or focused
// (text fields) when "x" is pressed outside a text field. Escape leaves a field so shortcuts work again.
const TEXT_ENTRY = "input:not([type=radio]):not([type=checkbox]):not([type=button]):not([type=submit]), textarea, select, [contenteditable]";

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  // Behind a modal dialog (an enlarged keyframe) the screen's keys do nothing: "a" there approved unseen.
  if (document.querySelector("dialog[open]:modal")) return;
  const t = ev.target;
  if (t instanceof Element && t.closest(TEXT_ENTRY)) {
    if (ev.key === "Escape") t.blur();
    return;
  }
  // Enter on a label or severity choice submits the override (the form's default button).
  if (ev.key === "Enter" && t instanceof HTMLInputElement && t.type === "radio" && t.form && t.form.matches("[data-verdict-form]")) {
    ev.preventDefault();
    const override = t.form.querySelector("[data-override]");
    if (override) override.click();
    return;
  }
  // Enter or Space on a focused button, link or disclosure does what that control does: the tag screen's Enter
  // hotkey ("submit and next") took them, so Enter on a chip's "evidence" submitted the item, and Enter on a
  // search match or on Release submitted it too (walk hwalk19).
  if ((ev.key === "Enter" || ev.key === " ") && t instanceof Element && t.closest("button, a[href], summary, input[type=button], input[type=submit]")) return;
  const el = document.querySelector(`[data-hotkey="${CSS.escape(ev.key)}"]`);
  if (!el) {
    // A key this screen lists elsewhere but cannot do here ("e" in a queue with no escalation queue) says why.
    const absent = document.querySelector(`[data-hotkey-absent="${CSS.escape(ev.key)}"]`);
    if (absent && !ev.repeat) absent.hidden = false;
    return;
  }
  ev.preventDefault();
  // A key held down repeats: "a" held approved one unseen item after another (the next screen is swapped in at once).
  if (ev.repeat) return;
  if (el.disabled) {
    // e.g. "0" (severity None) on a violation: say why nothing was chosen, on the note beside the choices.
    const note = el.form && el.form.querySelector("[data-severity-note]");
    if (note && !note.hidden) {
      note.classList.remove("flash");
      void note.offsetWidth; // restart the highlight
      note.classList.add("flash");
    }
    return;
  }
  if (el.matches(TEXT_ENTRY)) el.focus(); else el.click();
});

// Label picker: typing filters the labels by key, name or policy keyword (data-search); ↓ moves to the first match (arrows then
// move between matches, as in any radio group); Enter picks the first match and submits.
function pickerVisible(picker) {
  return [...picker.querySelectorAll("[data-pick-option]:not([hidden]) input[type=radio]")];
}

function pickerFilter(input) {
  const picker = input.closest("[data-picker]");
  const q = input.value.trim().toLowerCase();
  let group = null, groupHas = false, any = false;
  const closeGroup = () => { if (group) group.hidden = !groupHas; };
  for (const el of picker.querySelectorAll("[data-pick-group], [data-pick-option]")) {
    if (el.matches("[data-pick-group]")) { closeGroup(); group = el; groupHas = false; continue; }
    const show = !q || el.dataset.search.includes(q);
    el.hidden = !show;
    if (!show) { const radio = el.querySelector("input"); if (radio.checked) radio.checked = false; }
    groupHas = groupHas || show;
    any = any || show;
  }
  closeGroup();
  // A word only the policy's newer version has (a pending item keeps the version it was routed under): say so.
  const newer = picker.querySelector("[data-pick-newer]");
  const names = q && !any && newer
    ? [...picker.querySelectorAll("[data-pick-newer-option]")].filter((el) => el.dataset.search.includes(q)).map((el) => el.dataset.name)
    : [];
  if (newer) {
    newer.querySelector("[data-pick-newer-names]").textContent = names.join(", ");
    newer.hidden = !names.length;
  }
  const none = picker.querySelector("[data-pick-none]");
  if (none) none.hidden = any || names.length > 0;
}

document.addEventListener("input", (ev) => {
  if (ev.target.matches && ev.target.matches("[data-picker-filter]")) pickerFilter(ev.target);
});

document.addEventListener("keydown", (ev) => {
  const input = ev.target;
  if (!(input instanceof HTMLInputElement) || !input.matches("[data-picker-filter]")) return;
  const visible = pickerVisible(input.closest("[data-picker]"));
  if (ev.key === "ArrowDown" && visible.length) {
    ev.preventDefault();
    visible[0].focus();
    visible[0].click();
  } else if (ev.key === "Enter" && visible.length && !visible.some((r) => r.checked)) {
    visible[0].click(); // then the browser submits the form with its default button (Override)
  }
});

// Severity: only the values the chosen label allows (the model's label until one is chosen).
function applySeverities(form, allowed) {
  const radios = [...form.querySelectorAll("input[name=severity]")];
  for (const r of radios) {
    r.disabled = !allowed.includes(r.value);
    if (r.disabled && r.checked) r.checked = false;
  }
  const enabled = radios.filter((r) => !r.disabled);
  if (enabled.length === 1) enabled[0].checked = true;
  severityNote(form, radios);
}

// A severity the label in force does not allow is greyed out; the note beside them says why, so "0" (None)
// doing nothing on a violation is not a silent omission.
function severityNote(form, radios) {
  const note = form.querySelector("[data-severity-note]");
  if (!note) return;
  const off = radios.filter((r) => r.disabled);
  const on = radios.filter((r) => !r.disabled).map((r) => r.value);
  let text = "";
  if (off.some((r) => r.value === "none")) {
    const safe = note.closest("[data-safe-label]")?.dataset.safeLabel;
    text = `None is only for the non-violative label${safe ? ` (${safe})` : ""}: a violation always has a severity`;
    text += off.length > 1 ? `, and this label allows only ${on.join(", ")}.` : ".";
  } else if (off.length) {
    text = "The non-violative label takes no severity: None is its only choice.";
  }
  if (note.textContent !== text) note.classList.remove("flash");
  note.textContent = text;
  note.hidden = !text;
  for (const r of radios) r.parentElement.title = r.disabled ? text : "";
}

document.addEventListener("change", (ev) => {
  const radio = ev.target;
  if (!(radio instanceof HTMLInputElement) || radio.name !== "label" || !radio.form) return;
  if (radio.form.matches("[data-verdict-form]")) applySeverities(radio.form, (radio.dataset.severities || "").split(" "));
});

function initVerdict(root) {
  const scope = root && root.querySelectorAll ? root : document;
  for (const fieldset of scope.querySelectorAll("[data-model-severities]")) {
    if (fieldset.form) applySeverities(fieldset.form, fieldset.dataset.modelSeverities.split(" "));
  }
}
initVerdict(document);
document.addEventListener("htmx:load", (ev) => initVerdict(ev.detail && ev.detail.elt));

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

// The page's messages (outside the review screen) with the region that holds them (templates/base.html).
function dropPageMessages() {
  document.querySelectorAll("ul.messages").forEach((ul) => {
    if (!ul.closest("#review-screen")) (ul.closest(".messages-region") || ul).remove();
  });
}

// Submit-and-next swaps in the next item with its own messages: drop the page's older ones (static/review.js
// does the same for the screen it swaps in). Only then: the screen's own partials (the tag panel loads by htmx
// as the page opens) leave the page's messages ("Item #12 escalated to “Senior”") where they are; they
// vanished before they could be read.
document.addEventListener("htmx:afterSwap", (ev) => {
  const target = ev.detail && ev.detail.target;
  if (!target || !(target.id === "review-screen" || target.querySelector?.("#review-screen"))) return;
  dropPageMessages();
});

// A panel that refreshes itself (hx-trigger "every 15s": the queue counts, a job's progress, the video list) is
// swapped while a keyboard user may be on one of its links or buttons: the element went, and the focus fell to the
// page's body, so the next Tab started again from the top bar every 15 seconds. htmx puts the focus back only on an
// element with an id; here the same link or button (by what it is, else by its place) in the new panel gets it.
const FOCUSABLE = 'a[href], button, input:not([type="hidden"]), select, textarea, summary, [tabindex]:not([tabindex="-1"])';
let refocus = null;

function focusKey(el) {
  return [el.tagName, el.getAttribute("href") || "", el.name || "", el.value || "", (el.textContent || "").trim()].join("|");
}

document.addEventListener("htmx:beforeSwap", (ev) => {
  refocus = null;
  const target = ev.detail && ev.detail.target;
  const active = document.activeElement;
  if (!target || !target.id || !active || active === document.body || active.id || !target.contains(active)) return;
  const all = [...target.querySelectorAll(FOCUSABLE)];
  refocus = { panel: target.id, key: focusKey(active), index: all.indexOf(active) };
});

document.addEventListener("htmx:afterSettle", () => {
  const wanted = refocus;
  refocus = null;
  if (!wanted || (document.activeElement && document.activeElement !== document.body)) return;
  const panel = document.getElementById(wanted.panel);
  if (!panel) return;
  const all = [...panel.querySelectorAll(FOCUSABLE)];
  const same = all.find((el) => focusKey(el) === wanted.key) || all[wanted.index];
  if (same && !same.disabled) same.focus({ preventScroll: true });
});

// An htmx request the server refused (4xx) or that failed (5xx, network) is not swapped in by htmx:
// say so instead of doing nothing. Plain-text answers (e.g. the NUL-character check) are shown as
// they are; an HTML page is reduced to its first message or heading.
function showRequestError(text) {
  let list = document.querySelector("ul.messages[data-request-errors]");
  if (!list) {
    // The alert is the list's box, not the list: role="alert" on the <ul> took its list semantics away (its
    // item read as an orphan, an axe "listitem" violation), and the box keeps it inside a landmark too.
    const box = document.createElement("div");
    box.className = "messages-region";
    box.setAttribute("role", "alert");
    list = document.createElement("ul");
    list.className = "messages";
    list.dataset.requestErrors = "";
    box.append(list);
    document.querySelector("main").before(box);
  }
  const item = document.createElement("li");
  item.className = "msg-error";
  item.textContent = text;
  list.replaceChildren(item);
}

function errorText(xhr) {
  const type = xhr.getResponseHeader("Content-Type") || "";
  let detail = "";
  if (type.startsWith("text/plain")) {
    detail = xhr.responseText;
  } else if (type.startsWith("application/json")) {
    try { detail = JSON.parse(xhr.responseText).detail || ""; } catch (e) { detail = ""; }
  } else if (type.startsWith("text/html")) {
    const doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
    const node = doc.querySelector(".msg-error, .error, main h1, h1");
    detail = node ? node.textContent : "";
  }
  detail = detail.replace(/\s+/g, " ").trim().slice(0, 300);
  if (xhr.status === 401 && detail) return detail; // signed out: the sentence says what to do
  return `The server refused this (HTTP ${xhr.status})${detail ? ": " + detail : "."}`;
}

document.addEventListener("htmx:responseError", (ev) => showRequestError(errorText(ev.detail.xhr)));
document.addEventListener("htmx:sendError", () =>
  showRequestError("The server could not be reached; check the connection and try again."),
);

// Items worked in this tab's review session: the review screen's header says "2nd in this session" (static/review.js).
// One rule for what counts: a decision recorded by review.js, and an escalation or a skip, plain form posts whose
// message on the page they land on is marked data-review-worked (moderation/review/views.py); a message is shown
// once, so a reload counts nothing again.
const REVIEW_SESSION_KEY = "review:session-count";
function reviewSessionCount() {
  return parseInt(sessionStorage.getItem(REVIEW_SESSION_KEY) || "0", 10) || 0;
}
function reviewSessionWorked() {
  sessionStorage.setItem(REVIEW_SESSION_KEY, String(reviewSessionCount() + 1));
}
document.querySelectorAll("[data-review-worked]").forEach(() => reviewSessionWorked());

// Signing in again (in another tab, or as someone else) gives the browser a new CSRF token; a form
// still open in an older tab carried the old one and was refused with nothing saved (a CoT
// correction or a policy edit typed there was lost). Every form and htmx request therefore sends
// the token the browser holds now.
function currentCsrfToken() {
  const found = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  return found ? decodeURIComponent(found.slice("csrftoken=".length)) : "";
}

document.addEventListener(
  "submit",
  (ev) => {
    const token = currentCsrfToken();
    if (!token || !(ev.target instanceof HTMLFormElement)) return;
    ev.target.querySelectorAll("input[name=csrfmiddlewaretoken]").forEach((input) => { input.value = token; });
  },
  true,
);

document.addEventListener("htmx:configRequest", (ev) => {
  const token = currentCsrfToken();
  if (token) ev.detail.headers["X-CSRFToken"] = token;
});

// A NUL character (text pasted from a broken source: invisible, and PostgreSQL's text cannot hold it) is said
// on its field before a form is sent, for every form, htmx or not: nothing is sent, the page and what was typed
// stay. The server refuses it too (RejectNulMiddleware; the workbench's Django forms say it on the field).
const NUL_FIELD_ERROR = "This contains a NUL character (\\x00), which text may not hold; remove it and try again.";

function clearNulError(field) {
  field.removeAttribute("aria-invalid");
  const note = document.getElementById(field.dataset.nulError || "");
  if (note) note.remove();
  delete field.dataset.nulError;
}

document.addEventListener(
  "submit",
  (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement)) return;
    const bad = [...form.elements].filter(
      (el) => el.name && !el.disabled && el.type !== "file" && typeof el.value === "string" && el.value.includes("\u0000"),
    );
    if (!bad.length) return;
    ev.preventDefault();
    ev.stopImmediatePropagation(); // neither htmx nor review.js sends it
    bad.forEach((field, i) => {
      clearNulError(field);
      const note = document.createElement("span");
      note.className = "error nul-error";
      note.id = `nul-error-${Date.now()}-${i}`;
      note.setAttribute("role", "alert");
      note.textContent = NUL_FIELD_ERROR;
      if (field.type === "hidden") form.prepend(note);
      else field.after(note);
      field.dataset.nulError = note.id;
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", note.id);
    });
    const first = bad.find((el) => el.type !== "hidden");
    if (first) first.focus();
  },
  true,
);

document.addEventListener("input", (ev) => {
  const field = ev.target;
  if (field instanceof HTMLElement && field.dataset.nulError && !String(field.value).includes("\u0000")) {
    clearNulError(field);
  }
});

// A [data-copy] button copies the text of the element its value selects (a token shown once); where the clipboard
// is not available (an http page, a refusing browser) it selects the text and says to press Ctrl+C.
document.addEventListener("click", async (ev) => {
  const button = ev.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  } catch {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = "Selected: press Ctrl+C";
  }
});

// A form marked data-keep-unsent="<key>" (the policy editor) keeps what the user typed in localStorage as they type,
// so a send that fails (the session expired: the POST lands on the sign-in page) loses nothing: back on the page,
// the edit is put back with a notice saying so and a Discard button. Sending marks it sent; the page the save
// lands on (data-unsent-saved="<key prefix>") clears a sent one. Without JS the form works as before.
// What is kept is the signed-in user's (<body data-user>): stored under "unsent:<user id>:<key>" (unsentKey), so on a
// browser two editors share, one's unsent edit is never put back for the other; "Log out" drops the user's own.
const UNSENT_PREFIX = "unsent:";

function unsentKey(name) {
  const user = document.body.dataset.user;
  return user ? `${UNSENT_PREFIX}${user}:${name}` : null; // nobody signed in: nothing is kept
}

function unsentState(form) {
  const state = {};
  for (const el of form.elements) {
    if (!el.name || el.name === "csrfmiddlewaretoken" || el.type === "submit" || el.type === "button") continue;
    if (el.type === "checkbox" || el.type === "radio") state[el.name + "=" + el.value] = el.checked;
    else state[el.name] = el.value;
  }
  return state;
}

// A checkbox the page added after it was drawn (a tag added by search) is not in the page drawn again: it carries its
// name (data-unsent-label), kept beside the state, and on restore the form is asked (an "unsent:missing" event, which
// the page's own script answers: static/tagging.js) to draw it again before the state is put back.
function unsentLabels(form) {
  const labels = {};
  for (const el of form.elements) {
    if (el.type === "checkbox" && el.name && el.dataset.unsentLabel) labels[el.name + "=" + el.value] = el.dataset.unsentLabel;
  }
  return labels;
}

function unsentRedraw(form, saved) {
  let redrawn = 0;
  const current = unsentState(form);
  for (const [field, label] of Object.entries(saved.labels || {})) {
    if (field in current || saved.state[field] !== true) continue;
    const cut = field.lastIndexOf("=");
    form.dispatchEvent(
      new CustomEvent("unsent:missing", { bubbles: true, detail: { name: field.slice(0, cut), value: field.slice(cut + 1), label } }),
    );
    if (field in unsentState(form)) redrawn += 1;
  }
  return redrawn;
}

function unsentRead(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || "null");
  } catch {
    return null;
  }
}

function unsentRestore(form) {
  const key = unsentKey(form.dataset.keepUnsent);
  if (!key) return;
  const read = unsentRead(key);
  if (!read || !read.state) return;
  const saved = unsentDropBlank(form, read);
  const redrawn = unsentRedraw(form, saved);
  const current = unsentState(form);
  const fields = Object.keys(saved.state);
  const reshown = sessionStorage.getItem("unsent-reshown") === key;
  sessionStorage.removeItem("unsent-reshown");
  // Hidden fields are the rows' counts: the page may have more rows than the edit kept (a row added since).
  const hidden = (name) => form.elements[name]?.type === "hidden";
  const missing = fields.some((name) => !(name in current));
  if (!redrawn && !missing && fields.every((name) => hidden(name) || current[name] === saved.state[name])) {
    if (reshown) unsentNotice(form, key, saved, true); // the server drew the rows it had: say so
    return; // otherwise the page already shows it
  }
  // Rows were added before the send (the server draws rows): ask it to draw the kept ones, once.
  const reshow = form.dataset.keepUnsentReshow;
  if (reshow && missing && !reshown) {
    const resend = document.createElement("form");
    resend.method = "post";
    resend.action = form.getAttribute("action") || window.location.href; // form.action is its "action" buttons
    resend.hidden = true;
    const add = (name, value) => {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      resend.append(input);
    };
    add("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken?.value || "");
    for (const [name, value] of Object.entries(saved.state)) {
      if (value === true) add(name.slice(0, name.lastIndexOf("=")), name.slice(name.lastIndexOf("=") + 1));
      else if (value !== false) add(name, value);
    }
    add("action", reshow);
    sessionStorage.setItem("unsent-reshown", key);
    document.body.append(resend);
    resend.submit();
    return;
  }
  for (const el of form.elements) {
    const name = el.type === "checkbox" || el.type === "radio" ? el.name + "=" + el.value : el.name;
    if (!(name in saved.state) || el.type === "hidden" || name === "csrfmiddlewaretoken") continue;
    if (el.type === "checkbox" || el.type === "radio") el.checked = saved.state[name];
    else el.value = saved.state[name];
  }
  unsentNotice(form, key, saved);
}

// A field marked data-unsent-not-blank (the whole taxonomy as JSON) is never put back empty over what the page drew:
// an emptied JSON box is no edit to keep, and the panel opened on an empty box instead of the current JSON (hwalk22).
function unsentDropBlank(form, saved) {
  const state = { ...saved.state };
  for (const el of form.querySelectorAll("[data-unsent-not-blank]")) {
    if (el.name in state && !String(state[el.name]).trim() && el.value.trim()) delete state[el.name];
  }
  return { ...saved, state };
}

function unsentNotice(form, key, saved, reshown = false) {
  const refused = Boolean(saved.sent || saved.refused); // kept as said, for the page opened again
  localStorage.setItem(key, JSON.stringify({ ...saved, sent: false, refused }));
  const folded = form.closest("details");
  if (folded) folded.open = true;
  const at = new Date(saved.at);
  const time = String(at.getHours()).padStart(2, "0") + ":" + String(at.getMinutes()).padStart(2, "0");
  const note = document.createElement("p");
  note.className = "panel notice";
  note.setAttribute("role", "status");
  note.dataset.unsentNotice = "";
  // Sent, then refused (a save the server turned down, this form or the page's other one): it was not "unsent".
  note.append(
    refused
      ? `Put back your edit from ${time}: it was sent but not saved — `
      : `Restored your unsent edit from ${time} — `,
  );
  const discard = document.createElement("button");
  discard.type = "button";
  discard.textContent = "Discard";
  discard.addEventListener("click", () => {
    localStorage.removeItem(key);
    if (reshown) {
      window.location.assign(window.location.href); // the editor as the version has it, not the rows redrawn
      return;
    }
    form.reset(); // back to what the server rendered
    note.remove();
  });
  note.append(discard);
  (folded || form).before(note);
}

function unsentKeep(ev) {
  const form = ev.target.form || ev.target.closest?.("form");
  if (!form || !form.dataset.keepUnsent) return;
  const key = unsentKey(form.dataset.keepUnsent);
  if (!key) return;
  const sent = ev.type === "submit";
  try {
    localStorage.setItem(key, JSON.stringify({ at: Date.now(), sent, state: unsentState(form), labels: unsentLabels(form) }));
  } catch {
    // storage full or refused: the form still sends
  }
}

document.addEventListener("input", unsentKeep);
document.addEventListener("change", unsentKeep);
document.addEventListener("submit", unsentKeep);

function unsentInit() {
  document.querySelectorAll("form[data-keep-unsent]").forEach(unsentRestore);
  document.querySelectorAll("[data-unsent-saved]").forEach((el) => {
    const prefix = unsentKey(el.dataset.unsentSaved);
    for (const key of Object.keys(localStorage)) {
      if (prefix && key.startsWith(prefix) && unsentRead(key)?.sent) localStorage.removeItem(key);
    }
  });
  // Kept before keys named their user ("policy-edit:…" at the top): whose it was cannot be told, so it is dropped.
  for (const key of Object.keys(localStorage)) {
    if (key.startsWith("policy-edit:")) localStorage.removeItem(key);
  }
}

// "Log out" (a form marked data-unsent-forget) leaves the browser to whoever comes next: the user's kept edits go.
// A session that ended by itself keeps them, to be put back once the same user signs in again.
document.addEventListener("submit", (ev) => {
  if (!(ev.target instanceof HTMLFormElement) || !ev.target.matches("[data-unsent-forget]")) return;
  const prefix = unsentKey("");
  if (!prefix) return;
  for (const key of Object.keys(localStorage)) {
    if (key.startsWith(prefix)) localStorage.removeItem(key);
  }
});
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", unsentInit);
else unsentInit();

// The keyframe strip (_video_media.html): when its keyframes are wider than the strip, the line under it says which
// are in view and its ‹ › buttons page to the others; ← → on a keyframe moves to the one beside it (scrolled into
// view). A scrollbar alone went unseen where scrollbars are drawn only while scrolling.
// "In view" means wholly in view: a keyframe cut off at the strip's edge was counted as shown ("keyframes 1–6" with
// the sixth a sliver), and a page of the strip's width less 100 px could step over one that was never shown whole.
// So › brings the first keyframe cut off on the right to the left edge, ‹ the last one cut off on the left to the
// right edge: every keyframe is wholly in view on some page.
function stripParts(box) {
  const strip = box.querySelector(".strip");
  return { strip, more: box.querySelector("[data-strip-more]"), frames: strip ? [...strip.querySelectorAll("button[data-seek]")] : [] };
}

function stripEdges(strip) {
  const left = strip.getBoundingClientRect().left + strip.clientLeft;
  return { left, right: left + strip.clientWidth };
}

function stripUpdate(box) {
  const { strip, more, frames } = stripParts(box);
  if (!strip || !more) return;
  const overflows = strip.scrollWidth > strip.clientWidth + 1;
  more.hidden = !overflows;
  box.classList.toggle("overflows", overflows);
  if (!overflows) return;
  const { left, right } = stripEdges(strip);
  const boxes = frames.map((frame, i) => [frame.getBoundingClientRect(), i + 1]);
  let inView = boxes.filter(([r]) => r.left >= left - 1 && r.right <= right + 1).map(([, n]) => n);
  // A strip narrower than one keyframe shows none whole: then it says which one it shows part of.
  if (!inView.length) inView = boxes.filter(([r]) => r.right > left + 1 && r.left < right - 1).map(([, n]) => n);
  const range = more.querySelector("[data-strip-range]");
  if (range && inView.length) {
    range.textContent = `keyframes ${inView[0]}–${inView[inView.length - 1]} of ${frames.length}`;
  }
  const atStart = strip.scrollLeft <= 0;
  const atEnd = strip.scrollLeft + strip.clientWidth >= strip.scrollWidth - 1;
  for (const step of more.querySelectorAll("[data-strip-step]")) {
    step.setAttribute("aria-disabled", String(step.dataset.stripStep === "-1" ? atStart : atEnd));
  }
}

const stripResized = typeof ResizeObserver === "function"
  ? new ResizeObserver((entries) => entries.forEach((e) => { const box = e.target.closest("[data-strip]"); if (box) stripUpdate(box); }))
  : null;

function initStrips(root) {
  const scope = root && root.querySelectorAll ? root : document;
  const boxes = scope.matches && scope.matches("[data-strip]") ? [scope] : [...scope.querySelectorAll("[data-strip]")];
  for (const box of boxes) {
    stripUpdate(box);
    const { strip } = stripParts(box);
    if (strip && stripResized) stripResized.observe(strip);
  }
}
initStrips(document);
document.addEventListener("htmx:load", (ev) => initStrips(ev.detail && ev.detail.elt));
document.addEventListener(
  "scroll",
  (ev) => {
    const box = ev.target instanceof Element && ev.target.matches(".strip") ? ev.target.closest("[data-strip]") : null;
    if (box) stripUpdate(box);
  },
  true,
);

document.addEventListener("click", (ev) => {
  const step = ev.target.closest("[data-strip-step]");
  const box = step && step.closest("[data-strip]");
  if (!box || step.getAttribute("aria-disabled") === "true") return;
  const { strip, frames } = stripParts(box);
  const { left, right } = stripEdges(strip);
  const later = step.dataset.stripStep === "1";
  const rects = frames.map((frame) => frame.getBoundingClientRect());
  const cut = later ? rects.find((r) => r.right > right + 1) : [...rects].reverse().find((r) => r.left < left - 1);
  let by = cut ? (later ? cut.left - left : cut.right - right) : 0;
  // No whole keyframe to bring in (one wider than the strip): a page of the strip's width.
  if (later ? by <= 1 : by >= -1) by = (later ? 1 : -1) * Math.max(strip.clientWidth - 100, 100);
  strip.scrollBy({ left: by, behavior: "instant" });
  stripUpdate(box);
});

document.addEventListener("keydown", (ev) => {
  if ((ev.key !== "ArrowLeft" && ev.key !== "ArrowRight") || ev.altKey || ev.ctrlKey || ev.metaKey) return;
  const frame = ev.target instanceof Element ? ev.target.closest(".strip button[data-seek]") : null;
  const box = frame && frame.closest("[data-strip]");
  if (!box) return;
  const { frames } = stripParts(box);
  const next = frames[frames.indexOf(frame) + (ev.key === "ArrowRight" ? 1 : -1)];
  if (!next) return;
  ev.preventDefault();
  next.focus();
  next.scrollIntoView({ block: "nearest", inline: "nearest" });
});

// The header's "More" menu and the review screen's floating "Keys" help (a <details> each): Escape closes one and
// gives the focus back to its summary; a click outside it closes it, as a menu does. The Keys help stayed open over
// the model verdict's heading whatever was pressed or clicked (walk 21).
const POPOVERS = "details[data-nav-more][open], details[data-popover][open]";
document.addEventListener("keydown", (ev) => {
  if (ev.key !== "Escape") return;
  const menu = document.querySelector(POPOVERS);
  if (!menu) return;
  menu.open = false;
  menu.querySelector("summary").focus();
});
document.addEventListener("click", (ev) => {
  for (const menu of document.querySelectorAll(POPOVERS)) {
    if (!menu.contains(ev.target)) menu.open = false;
  }
});

// The header's links fold into "More" by the width there is, not by their number: the server folds the setup links
// of a user with daily work (what a browser without scripts shows), then this puts every link back on the bar and
// folds from the last one until the bar fits its one line beside the brand and the user. Run at load and on each
// resize (one measurement per frame). A menu that holds nothing is hidden.
function navFit() {
  const nav = document.querySelector("header.topbar nav[data-nav-fit]");
  const more = nav && nav.querySelector("details[data-nav-more]");
  if (!more) return;
  const list = more.querySelector("ul");
  more.open = false;
  for (const item of [...list.children]) {
    nav.insertBefore(item.firstElementChild, more);
    item.remove();
  }
  nav.classList.add("nav-fit");
  more.hidden = true;
  const fits = () => nav.scrollWidth <= nav.clientWidth;
  if (fits()) return;
  more.hidden = false;
  const links = [...nav.querySelectorAll(":scope > a")];
  for (let i = links.length - 1; i > 0 && !fits(); i--) {
    const item = document.createElement("li");
    item.append(links[i]);
    list.prepend(item);
  }
}
let navFitFrame = 0;
window.addEventListener("resize", () => {
  cancelAnimationFrame(navFitFrame);
  navFitFrame = requestAnimationFrame(navFit);
});
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", navFit);
else navFit();
