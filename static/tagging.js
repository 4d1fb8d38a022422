// Tags panel: add a tag from the type-ahead results as a selected chip; on the tag screen (a claimed
// task), digits 1-9 toggle the chips and Enter in the search adds the first match.
(function () {
  if (window.tagPanelReady) return;
  window.tagPanelReady = true;

  // A chip for a tag added by search. Its checkbox carries the tag's name (data-unsent-label) so that the tag
  // screen's kept ticks (data-keep-unsent, static/workbench.js) can draw it again after an expired session, and a
  // hidden "_choice_name" names it on the page a stale form lands on (workbench.views.csrf_failure).
  function drawAddedChip(form, id, tagName) {
    const existing = form.querySelector(`input[name=tag][value="${CSS.escape(id)}"]`);
    if (existing) {
      existing.checked = true;
      return;
    }
    const li = document.createElement("li");
    li.className = "chip added";
    li.dataset.chip = "";
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.name = "tag";
    box.value = id;
    box.checked = true;
    box.dataset.unsentLabel = tagName;
    const name = document.createElement("span");
    name.className = "chip-name";
    name.textContent = tagName;  // text, never HTML
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = "added";
    const named = document.createElement("input");
    named.type = "hidden";
    named.name = "_choice_name";
    named.value = `tag:${id}:${tagName} (added by search)`;
    label.append(box, " ", name, " ", badge);
    li.append(label, named);
    form.querySelector(".chips").append(li);
  }

  // The kept ticks of an expired session name a tag added by search that the page drawn again lacks.
  document.addEventListener("unsent:missing", (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.matches("[data-tags-form]") || ev.detail.name !== "tag") return;
    if (!/^[0-9]+$/.test(ev.detail.value)) return;
    drawAddedChip(form, ev.detail.value, String(ev.detail.label));
  });

  function addChip(button) {
    const form = button.closest("[data-tags-form]");
    if (!form) return;
    drawAddedChip(form, button.dataset.addTag, button.dataset.tagName);
    const search = form.querySelector("[data-tag-search]");
    const results = form.querySelector("[data-tag-results]");
    if (search) { search.value = ""; search.focus(); }
    if (results) results.replaceChildren();
  }

  // Scrolled into view above the tag screen's sticky "Submit tags and next" row, not merely inside the window:
  // at 1440x900 the box and what it found sat at the window's bottom edge, under that row, so the reviewer typed
  // and saw no match (its height is measured, as its hint wraps to one line or two).
  function bringIntoView(el) {
    const row = el.closest("form") && el.closest("form").querySelector(".tags-submit-row");
    el.style.scrollMarginBottom = row ? `${Math.ceil(row.getBoundingClientRect().height) + 8}px` : "";
    el.scrollIntoView({ block: "nearest" });
  }

  // A match that is already a ticked chip says so (walk hwalk19: "p" listed 手机, ticked above, first; Enter
  // "added" it and nothing changed on the screen).
  function markTicked(list) {
    const form = list.closest("[data-tags-form]");
    if (!form) return;
    list.querySelectorAll("[data-add-tag]").forEach((button) => {
      const box = form.querySelector(`input[name=tag][value="${CSS.escape(button.dataset.addTag)}"]`);
      if (!box || !box.checked || button.querySelector("[data-ticked]")) return;
      const mark = document.createElement("span");
      mark.className = "badge";
      mark.dataset.ticked = "";
      mark.textContent = "ticked";
      button.append(" ", mark);
    });
  }

  // What the search found opens under the box; with a full list of chips the box sits at the window's bottom edge
  // and the results fell out of sight (Enter then added a "first match" nobody had seen): bring them into view.
  document.addEventListener("htmx:afterSwap", (ev) => {
    const list = ev.detail && ev.detail.target;
    if (list instanceof Element && list.matches("[data-tag-results]") && list.children.length) {
      markTicked(list);
      bringIntoView(list);
    }
  });

  // ↓ from the box goes to the matches, ↑/↓ move among them, ↑ from the first (or Escape) goes back to the box;
  // Enter or Space on a match adds it (its button's click). Only the first match was reachable without a mouse
  // but by tabbing, while the label picker beside it offers ↓ (walk hwalk19).
  function matchStep(ev, search) {
    const form = search.form;
    const buttons = form ? Array.from(form.querySelectorAll("[data-tag-results] [data-add-tag]")) : [];
    const at = buttons.indexOf(ev.target);
    let next = null;
    if (ev.key === "ArrowDown") next = at < 0 ? buttons[0] : buttons[Math.min(at + 1, buttons.length - 1)];
    else if (ev.key === "ArrowUp" && at >= 0) next = at === 0 ? search : buttons[at - 1];
    else if (ev.key === "Escape" && at >= 0) next = search;
    if (!next) return;
    ev.preventDefault();
    next.focus();
    bringIntoView(next);  // a match low in a full list sat under the sticky submit row when focused
  }

  document.addEventListener("keydown", (ev) => {
    const button = ev.target instanceof Element && ev.target.closest("[data-tag-results] [data-add-tag]");
    if (!button) return;
    const search = button.closest("[data-tags-form]") && button.closest("[data-tags-form]").querySelector("[data-tag-search]");
    if (search) matchStep(ev, search);
  });

  // "/" (or Tab) into the search box: the box itself out from under the sticky row.
  document.addEventListener("focusin", (ev) => {
    const t = ev.target;
    if (t instanceof HTMLInputElement && t.matches("[data-tag-search]")) bringIntoView(t);
  });

  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("[data-add-tag]");
    if (button) { ev.preventDefault(); addChip(button); }
  });

  // The tag set switch (tag screen) reloads the page with the other set's chips, dropping what was ticked,
  // unticked or added here: ask first, and only when the reviewer changed something.
  function chipsChanged() {
    const form = document.querySelector("[data-tags-form]");
    if (!form) return false;
    return Array.from(form.querySelectorAll("input[name=tag]")).some((box) => box.checked !== box.defaultChecked);
  }

  // Both questions below are asked in the page, as every other confirmation here is (the integration switch, the
  // policy publish): a step saying what happens, "Yes, ..." (which takes the focus) and Cancel. They were the
  // browser's confirm() box: another look, and nothing on the page said what had been asked once it was gone.
  function confirmStep(step, focusOnCancel) {
    step.hidden = false;
    step.dataset.asked = "1";
    const yes = step.querySelector("[data-confirm-yes]");
    if (yes) yes.focus();
    step.onCancel = focusOnCancel;
  }

  function confirmClose(step) {
    if (!step || step.hidden) return;
    step.hidden = true;
    delete step.dataset.asked;
  }

  document.addEventListener("click", (ev) => {
    const cancel = ev.target.closest("[data-confirm-cancel]");
    const step = cancel && cancel.closest(".confirm-step");
    if (!step) return;
    ev.preventDefault();
    confirmClose(step);
    if (step.onCancel) step.onCancel();
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape") return;
    const step = ev.target instanceof Element ? ev.target.closest(".confirm-step") : null;
    const cancel = step && step.querySelector("[data-confirm-cancel]");
    if (cancel) { ev.preventDefault(); cancel.click(); }
  });

  // The tag set switch (tag screen) reloads the page with the other set's chips, dropping what was ticked,
  // unticked or added here: ask first, and only when the reviewer changed something.
  document.addEventListener("change", (ev) => {
    const select = ev.target;
    if (!(select instanceof HTMLSelectElement) || !select.matches("[data-tag-set-switch]")) return;
    const step = select.form.querySelector("[data-confirm-switch]");
    const current = Array.from(select.options).find((option) => option.defaultSelected);
    if (chipsChanged() && step && (!current || select.value !== current.value)) {
      step.querySelector("[data-switch-to]").textContent = select.selectedOptions[0].textContent;
      confirmStep(step, () => {
        if (current) select.value = current.value;  // stay on this set, the chips as they are
        select.focus();
      });
      return;
    }
    confirmClose(step);
    select.form.submit();
  });

  // Submitting a tags panel with no chip ticked rejects every suggestion at once (a stray Enter did it without a
  // word): ask first, as the tag set switch does. The one rule for both places the panel is: the tag screen's
  // "Submit tags and next" and the review screen's "Save tags" (sent by htmx). The server takes an empty submit as
  // it always did. Listening on the document while the event goes down to the form, so the question stops it before
  // htmx's own listener on the form sends it; the step's "Yes, reject them all" sends it.
  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.matches("[data-tags-form]")) return;
    const step = form.querySelector("[data-confirm-reject-all]");
    const boxes = Array.from(form.querySelectorAll("[data-chip] input[name=tag]"));
    if (!boxes.length || boxes.some((box) => box.checked)) { confirmClose(step); return; }
    if (!step || (ev.submitter && ev.submitter.matches("[data-confirm-yes]"))) return;
    ev.preventDefault();
    ev.stopPropagation();  // nor sent by htmx (the review screen's panel)
    const shown = form.querySelectorAll("input[name=shown]").length || boxes.length;
    step.querySelector("[data-reject-count]").textContent = String(shown);
    confirmStep(step, () => {
      const first = form.querySelector("[data-chip-key]");
      if (first) first.focus();  // the keyboard goes on where the ticking is done
    });
  }, true);

  // A chip ticked while the question stands answers it: the submit no longer rejects them all.
  document.addEventListener("change", (ev) => {
    const box = ev.target;
    if (!(box instanceof HTMLInputElement) || !box.matches("[data-tags-form] input[name=tag]") || !box.checked) return;
    confirmClose(box.form.querySelector("[data-confirm-reject-all]"));
  });

  document.addEventListener("keydown", (ev) => {
    const t = ev.target;
    if (t instanceof HTMLInputElement && t.matches("[data-tag-search]")) {
      // Tags are mostly typed through an input method (pinyin): Enter while it composes a word confirms the
      // word and is the input method's, not "add the first match".
      if (ev.isComposing || ev.keyCode === 229) return;
      if (ev.key === "ArrowDown") { matchStep(ev, t); return; }
      if (ev.key === "Enter") {
        ev.preventDefault();  // a typed search never submits the form
        const first = t.form && t.form.querySelector("[data-add-tag]");
        if (first) {
          addChip(first);
        } else if (!t.value.trim() && t.form && t.form.querySelector("input[name=task]")) {
          // The box keeps the focus after a tag is added: Enter there, empty, is "submit tags and next",
          // as the screen's hint says (it did nothing, and the keyboard flow stopped until a click).
          t.form.requestSubmit(t.form.querySelector("[data-tags-submit]"));
        }
      }
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (t instanceof Element && t.closest("input:not([type=checkbox]), textarea, select")) return;
    const form = document.querySelector("[data-tags-form]");
    if (!form || !form.querySelector("input[name=task]")) return;  // digits only on the tag screen
    if (/^[1-9]$/.test(ev.key)) {
      const box = form.querySelector(`[data-chip-key="${ev.key}"]`);
      if (box) { ev.preventDefault(); box.checked = !box.checked; }
    }
  });
})();
