// Curation screen: the "alias of" box searches the vocabulary as the editor types (the tag review screen's
// search endpoint, over every active tag) and offers the matches as a listbox: ArrowDown / ArrowUp move,
// Enter or a click picks, Escape closes; Enter with nothing highlighted sends the form as typed. Typing is
// debounced and a newer search aborts the one still in flight, so a slow answer never overwrites a newer one.
(function () {
  if (window.tagPickReady) return;
  window.tagPickReady = true;

  const DELAY_MS = 120;
  const pending = new WeakMap(); // input -> {timer, controller}

  function partsOf(input) {
    const box = input.closest("[data-tag-pick]");
    return box ? { box, list: box.querySelector("[role=listbox]") } : null;
  }

  function options(list) {
    return Array.from(list.querySelectorAll("[role=option]:not([aria-disabled=true])"));
  }

  function close(input, list) {
    list.hidden = true;
    list.replaceChildren();
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function highlight(input, list, index) {
    const opts = options(list);
    opts.forEach((o, i) => {
      o.setAttribute("aria-selected", String(i === index));
      o.classList.toggle("active", i === index);
    });
    if (index >= 0 && opts[index]) {
      input.setAttribute("aria-activedescendant", opts[index].id);
      opts[index].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function highlighted(list) {
    return options(list).findIndex((o) => o.getAttribute("aria-selected") === "true");
  }

  function choose(input, list, option) {
    input.value = option.dataset.pickTag;
    close(input, list);
    input.focus();
  }

  function show(input, list, html) {
    list.innerHTML = html; // the server's fragment, autoescaped there
    options(list).forEach((o, i) => (o.id = `${list.id}-${i}`));
    list.hidden = !list.children.length;
    input.setAttribute("aria-expanded", String(!list.hidden));
    input.removeAttribute("aria-activedescendant");
  }

  async function search(input) {
    const parts = partsOf(input);
    if (!parts) return;
    const was = pending.get(input);
    if (was && was.controller) was.controller.abort();
    const q = input.value.trim();
    if (!q) {
      close(input, parts.list);
      return;
    }
    const controller = new AbortController();
    pending.set(input, { controller });
    let html;
    try {
      const url = `${parts.box.dataset.searchUrl}&q=${encodeURIComponent(q)}`;
      const response = await fetch(url, { headers: { "HX-Request": "true" }, signal: controller.signal });
      html = response.ok ? await response.text() : null;
    } catch (err) {
      if (err.name === "AbortError") return;
      html = null;
    }
    if (document.activeElement !== input) return; // the editor has moved on
    if (html === null) {
      html = '<li class="hint" role="option" aria-disabled="true">The tag search did not answer: type the tag\u2019s whole name.</li>';
    }
    show(input, parts.list, html);
  }

  function later(input) {
    const was = pending.get(input) || {};
    clearTimeout(was.timer);
    pending.set(input, { ...was, timer: setTimeout(() => search(input), DELAY_MS) });
  }

  // Tags are mostly typed through an input method (pinyin): while a word is being composed its keys (Enter
  // confirms the word, arrows move among the IME's candidates) are the IME's, and the search waits for the word.
  document.addEventListener("input", (ev) => {
    const input = ev.target;
    if (ev.isComposing) return;
    if (input instanceof HTMLInputElement && input.closest("[data-tag-pick]")) later(input);
  });

  document.addEventListener("compositionend", (ev) => {
    const input = ev.target;
    if (input instanceof HTMLInputElement && input.closest("[data-tag-pick]")) later(input);
  });

  document.addEventListener("keydown", (ev) => {
    const input = ev.target;
    if (!(input instanceof HTMLInputElement) || !input.closest("[data-tag-pick]")) return;
    if (ev.isComposing || ev.keyCode === 229) return;
    const { list } = partsOf(input);
    const opts = options(list);
    const at = highlighted(list);
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      if (list.hidden) {
        search(input);
        return;
      }
      if (!opts.length) return;
      const step = ev.key === "ArrowDown" ? 1 : -1;
      highlight(input, list, at < 0 ? (step > 0 ? 0 : opts.length - 1) : (at + step + opts.length) % opts.length);
    } else if (ev.key === "Enter" && !list.hidden && at >= 0) {
      ev.preventDefault(); // picks the highlighted tag; the next Enter sends the form
      choose(input, list, opts[at]);
    } else if (ev.key === "Escape" && !list.hidden) {
      ev.preventDefault();
      close(input, list);
    }
  });

  // mousedown, not click: the box keeps the focus (a blur would close the list first).
  document.addEventListener("mousedown", (ev) => {
    const option = ev.target.closest("[data-tag-pick] [role=option][data-pick-tag]");
    if (!option) return;
    ev.preventDefault();
    const input = option.closest("[data-tag-pick]").querySelector("input");
    choose(input, partsOf(input).list, option);
  });

  // A refused decision redraws its row: the focus goes back to the box that was refused, its text kept, so the
  // editor corrects it from the keyboard (it was left on the page's body).
  document.addEventListener("htmx:afterSettle", (ev) => {
    const id = ev.detail && ev.detail.target && ev.detail.target.id;
    const row = id && id.startsWith("proposal-") ? document.getElementById(id) : null;
    const refused = row && row.querySelector("input[aria-invalid=true]");
    if (refused) {
      refused.focus();
      refused.setSelectionRange(refused.value.length, refused.value.length);
    }
  });

  document.addEventListener("focusout", (ev) => {
    const input = ev.target;
    if (!(input instanceof HTMLInputElement) || !input.closest("[data-tag-pick]")) return;
    const was = pending.get(input);
    if (was) {
      clearTimeout(was.timer);
      if (was.controller) was.controller.abort();
    }
    close(input, partsOf(input).list);
  });
})();
