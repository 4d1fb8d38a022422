// Instant next on the review screen.
//
// The item after the current one is already claimed for this reviewer ("ahead"); its screen is
// fetched and kept ready (a detached element, its images and video metadata warmed). A decision
// swaps that screen in at once and sends the decision in the background:
//   - success: the answer names the item claimed ahead of the one now shown, whose screen is
//     fetched in turn;
//   - failure (refused, network, signed out): the decided item comes back, as it was left (choices
//     still selected), with the reason; the item that had been swapped in is kept ready again.
// One decision is in flight at a time; a second decision waits for it (and for the next screen).
// A network failure is retried once; the server returns the recorded verdict for a resend, so a
// retry never records twice. Without this script the form is an ordinary POST.
(() => {
  const state = { ready: null, inflight: null, busy: new Set(), last: null, pressNote: null, popIgnored: false };
  // A second decision this soon after the one before, on the item that one swapped in, while the first is still on
  // its way, is a double press (a double-tapped "a", a double-click on Approve, whose button the next screen has in
  // the same place): nobody decides an item they have seen for a quarter of a second. It is ignored and said.
  const DOUBLE_PRESS_MS = 250;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  const current = () => document.getElementById("review-screen");
  // The browser's token now (workbench.js), else the page's: a sign-in in another tab renews it.
  const csrf = () => {
    const el = document.querySelector("input[name=csrfmiddlewaretoken]");
    return currentCsrfToken() || (el ? el.value : "");
  };

  // --- what the header shows: SLA countdown and position in this session -----------------------
  function fmtSpan(ms) {
    const s = Math.abs(Math.round(ms / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (h >= 24) return `${Math.floor(h / 24)}d ${h % 24}h`;
    if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
    return `${m}m ${String(sec).padStart(2, "0")}s`;
  }

  function ordinal(n) {
    const tens = n % 100;
    const suffix = tens >= 11 && tens <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th");
    return `${n}${suffix}`;
  }

  function paintHeader(root) {
    if (!root) return;
    const pos = root.querySelector("[data-session-pos]");
    // An ordinal, not "item 3": beside the item's and the video's numbers a bare "item 3" read as a third number
    // for the same video.
    if (pos) pos.textContent = `${ordinal(reviewSessionCount() + 1)} in this session`;
    tickSla(root);
  }

  function tickSla(root) {
    const el = root && root.querySelector("[data-deadline]");
    if (!el) return;
    const left = Date.parse(el.dataset.deadline) - Date.now();
    if (Number.isNaN(left)) return;
    el.textContent = left >= 0 ? `${fmtSpan(left)} left` : `breached ${fmtSpan(left)} ago`;
    el.classList.toggle("sla-breached", left < 0);
    el.classList.toggle("sla-soon", left >= 0 && left < 3600 * 1000);
  }
  setInterval(() => tickSla(current()), 1000);

  // --- the item ahead: fetch its screen and warm its media ---------------------------------------
  function warm(el) {
    const keep = [];
    for (const img of el.querySelectorAll("img[src]")) {
      const i = new Image();
      i.decoding = "async";
      i.src = img.getAttribute("src");
      keep.push(i);
    }
    const video = el.querySelector("video[src]");
    if (video) {
      // Metadata and the first frames: the same request the swapped-in player makes.
      const v = document.createElement("video");
      v.preload = "auto";
      v.muted = true;
      v.src = video.getAttribute("src");
      keep.push(v);
    }
    const poster = video && video.getAttribute("poster");
    if (poster) { const i = new Image(); i.src = poster; keep.push(i); }
    return keep;
  }

  function prefetch(pk, url) {
    const entry = { pk: String(pk), el: null, warmed: null };
    entry.promise = fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then((resp) => {
        if (!resp.ok || resp.redirected) throw new Error(`HTTP ${resp.status}`);
        return resp.text();
      })
      .then((html) => {
        const tpl = document.createElement("template");
        tpl.innerHTML = html;
        const el = tpl.content.querySelector("#review-screen");
        if (!el || el.dataset.task !== entry.pk) throw new Error("not a review screen");
        if (window.initVerdict) window.initVerdict(el);
        entry.warmed = warm(el);
        entry.el = el;
        return entry;
      })
      .catch(() => { if (state.ready === entry) state.ready = null; return null; });
    state.ready = entry;
    return entry;
  }

  // --- fitting the window ----------------------------------------------------------------------------
  // The two columns scroll on their own and end at the window's bottom, so the decision row (Skip, Release) stays in
  // view. What sits above them varies (a message, the header, a re-upload line of one line or several): their top is
  // measured (CSS reads --review-cols-top), not guessed in rem, which left the Release row under the edge.
  function fitColumns() {
    const grid = document.querySelector("#review-screen .review-grid");
    if (!grid) return;
    const top = Math.ceil(grid.getBoundingClientRect().top + window.scrollY);
    document.documentElement.style.setProperty("--review-cols-top", `${top}px`);
  }
  window.addEventListener("resize", fitColumns);

  // --- swapping ------------------------------------------------------------------------------------
  // history: "push" a new entry for el, "replace" the current one, or go "back" to the entry before (the
  // item brought back after a refusal already has that entry: a second one made Back do nothing at first).
  function show(el, { history: how = "push" } = {}) {
    const cur = current();
    if (!cur || cur === el) return cur;
    cur.replaceWith(el);
    // The page's messages were about the item before: the next one starts without them.
    dropPageMessages();
    document.title = el.dataset.title || document.title;
    if (how === "push") history.pushState({ review: el.dataset.task }, "", el.dataset.url);
    else if (how === "back") {
      state.popIgnored = true; // the popstate it fires is ours: the screen already shows el
      history.back();
    } else history.replaceState({ review: el.dataset.task }, "", el.dataset.url);
    if (window.htmx) window.htmx.process(el);
    el.dispatchEvent(new CustomEvent("review:shown", { bubbles: true }));
    paintHeader(el);
    window.scrollTo(0, 0);
    fitColumns();
    return cur;
  }

  function status(text, kind) {
    const box = document.getElementById("review-status");
    if (!box) return;
    box.textContent = text;
    box.className = `review-status ${kind || ""}`;
  }

  function failureText(resp, data) {
    if (data && data.error) return data.error;
    if (!resp) return "The server could not be reached (after a retry); check the connection.";
    if (resp.redirected && resp.url.includes("/login")) return "You were signed out; sign in again in another tab, then retry.";
    return `The server refused this (HTTP ${resp.status}).`;
  }

  // --- the decided item comes back -----------------------------------------------------------------
  // decidedByYou: the reviewer's own verdict is already recorded (decided in another tab): not a lost claim.
  function bringBack(decided, shown, message, stillYours, decidedByYou) {
    const box = decided.querySelector("[data-review-failure]");
    if (box) {
      box.hidden = false;
      box.textContent = stillYours
        ? `Not recorded: ${message} Your choices are kept; decide again to retry.`
        : decidedByYou
          ? `${message} `
          : `Not recorded: ${message} Your claim on this item is lost: it can no longer be decided, skipped or released here. `;
      if (!stillYours) {
        const back = document.createElement("a");
        back.href = decided.dataset.queueUrl || "/review/";
        back.textContent = "Back to the review queues for your next item";
        box.append(back);
      }
    }
    // A lost claim: every button that acts on the item is off (the server would refuse each one).
    decided.querySelectorAll("#verdict button").forEach((b) => { b.disabled = !stillYours; });
    decided.toggleAttribute("data-claim-lost", !stillYours);
    if (shown && shown.isConnected && shown !== decided) {
      // The entry pushed when `shown` was swapped in is dropped, not overwritten with the decided item's address.
      const pushed = history.state && history.state.review === shown.dataset.task;
      show(decided, { history: pushed ? "back" : "replace" });
      const entry = { pk: shown.dataset.task, el: shown };
      entry.promise = Promise.resolve(entry);
      state.ready = entry; // the item that had been swapped in waits, as it was left
    }
    state.pressNote = null;
    status(decidedByYou ? `Item #${decided.dataset.task}: ${message}` : `Item #${decided.dataset.task} was not recorded: ${message}`, "error");
  }

  // --- sending a decision --------------------------------------------------------------------------
  // A keepalive request may carry at most 64 KiB: a larger body (a very long note) would fail before it
  // is sent, which read as "the server could not be reached". Such a body goes as a plain request.
  function bodyBytes(body) {
    const encoder = new TextEncoder();
    let size = 0;
    for (const [key, value] of body.entries()) {
      size += encoder.encode(key).length + (typeof value === "string" ? encoder.encode(value).length : value.size) + 100;
    }
    return size;
  }

  async function post(form, body) {
    const keepalive = bodyBytes(body) < 60000;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const resp = await fetch(form.action, {
          method: "POST",
          body,
          credentials: "same-origin",
          keepalive, // survives leaving the page (the decision is not lost)
          headers: { "X-Review-Background": "1", "X-CSRFToken": csrf() },
        });
        const type = resp.headers.get("Content-Type") || "";
        if (type.startsWith("application/json")) return { resp, data: await resp.json() };
        // e.g. the NUL-character check answers in plain text before any view runs
        const text = type.startsWith("text/plain") ? (await resp.text()).replace(/\s+/g, " ").trim().slice(0, 300) : "";
        return { resp, data: text ? { ok: false, error: `HTTP ${resp.status}: ${text}`, still_yours: true } : null };
      } catch (e) {
        if (attempt === 0) await sleep(700);
      }
    }
    return { resp: null, data: null };
  }

  // The one mistake worth catching before the screen moves on (the server checks everything again).
  // A refusal said before sending: its text, and the field to fix, which takes the focus (focus stayed on the page's
  // body after "a" without a severity, hwalk22 m04: the reviewer had to find the severities by hand).
  function clientCheck(form, submitter) {
    const filter = form.querySelector("[data-picker-filter]");
    const firstSeverity = () => form.querySelector("input[name=severity]:not(:disabled)");
    const chosen = form.querySelector("input[name=label]:checked");
    if (submitter && submitter.value === "override" && !chosen) {
      return { text: "Choose the label that replaces the model's verdict (press o and type).", field: filter };
    }
    // The server refuses these two overrides too; said here, before the screen moves on and comes back refused.
    if (submitter && submitter.value === "override" && chosen.value === form.dataset.modelLabel) {
      return { text: `${chosen.value} is the model's own label: approve (a) to keep it, or choose another label.`, field: filter };
    }
    if (submitter && submitter.value === "override" && !form.querySelector("input[name=severity]:checked")) {
      const allowed = (chosen.dataset.severities || "").split(" ").filter(Boolean);
      if (allowed.length > 1) {
        const keys = [...form.querySelectorAll("input[name=severity]")]
          .filter((r) => allowed.includes(r.value))
          .map((r) => `${r.dataset.hotkey} ${r.value}`);
        return { text: `“${chosen.value}” is a violation: choose its severity (${keys.join(", ")}), then override.`, field: firstSeverity() };
      }
    }
    // Approving a violation the model gave no severity: the server refuses it, and the screen had already moved
    // on to the next item, then came back with the refusal. Said here, before anything moves.
    const severities = form.querySelector("[data-model-severities]");
    if (submitter && submitter.value === "approve" && severities && !form.querySelector("input[name=severity]:checked")) {
      const allowed = (severities.dataset.modelSeverities || "").split(" ").filter(Boolean);
      if (allowed.length > 1 && !allowed.includes(severities.dataset.modelSeverity || "")) {
        const keys = [...form.querySelectorAll("input[name=severity]")]
          .filter((r) => allowed.includes(r.value))
          .map((r) => `${r.dataset.hotkey} ${r.value}`);
        return { text: `The model gave no severity for this violation: choose one (${keys.join(", ")}), then approve.`, field: firstSeverity() };
      }
    }
    return null;
  }

  async function decide(form, submitter) {
    const decided = form.closest("#review-screen");
    const pk = decided.dataset.task;
    if (state.busy.has(pk)) return; // pressed twice: it is on its way already
    const now = Date.now();
    if (state.inflight && state.last && state.last.pk !== pk && now - state.last.at < DOUBLE_PRESS_MS) {
      // Said with the first decision's outcome (settle), which is still on its way.
      state.pressNote = `Item #${pk} had only just appeared: that second press was not taken as its decision.`;
      status(state.pressNote, "");
      return;
    }
    const problem = clientCheck(form, submitter);
    const box = decided.querySelector("[data-review-failure]");
    if (problem) {
      if (box) { box.hidden = false; box.textContent = problem.text; }
      const target = problem.field || box;
      if (target) {
        if (target === box) box.tabIndex = -1;
        target.focus();
      }
      return;
    }
    if (box) box.hidden = true;
    const body = new FormData(form, submitter);
    state.last = { pk, at: now };
    state.busy.add(pk);
    decided.setAttribute("aria-busy", "true");
    try {
      if (state.inflight) await state.inflight; // one decision at a time, in order
      if (!decided.isConnected) return;
      let next = state.ready;
      if (next && !next.el) next = await next.promise; // fetched but not yet here: wait for it
      const shown = next && next.el ? next.el : null;
      if (shown) {
        state.ready = null;
        show(shown);
      } else {
        status(`Recording item #${pk}…`, "");
      }
      const sent = post(form, body).then(({ resp, data }) => settle(decided, shown, resp, data));
      state.inflight = sent;
      await sent;
    } finally {
      state.busy.delete(pk);
      decided.removeAttribute("aria-busy");
      if (state.inflight && !state.busy.size) state.inflight = null;
    }
  }

  async function settle(decided, shown, resp, data) {
    if (!resp || !data || !data.ok) {
      bringBack(decided, shown, failureText(resp, data), data ? !!data.still_yours : true, !!(data && data.decided_by_you));
      return;
    }
    reviewSessionWorked(); // workbench.js: one rule for decisions, escalations and skips
    status(state.pressNote ? `${data.recorded} ${state.pressNote}` : data.recorded, "ok");
    state.pressNote = null;
    const queueUrl = decided.dataset.queueUrl || "/review/";
    if (!data.next) {
      window.location.assign(queueUrl);
      return;
    }
    if (!shown) {
      // Nothing was ready to swap in: fetch the next item's screen now.
      const got = await prefetch(data.next, `${data.next_url}?prefetch=1`).promise;
      state.ready = null;
      if (!got || !decided.isConnected) { window.location.assign(data.next_url); return; }
      show(got.el);
      shown = got.el;
    } else if (String(data.next) !== shown.dataset.task) {
      // The item shown is not the one the server gives next (its claim lapsed and was taken): go there.
      window.location.assign(data.next_url);
      return;
    }
    paintHeader(shown);
    const waiting = shown.querySelector("[data-waiting]");
    if (waiting && typeof data.waiting === "number") waiting.textContent = `${data.waiting} waiting`;
    if (data.ahead) prefetch(data.ahead, data.ahead_url);
  }

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.matches("[data-verdict-form]")) return;
    if (!form.closest("#review-screen")) return;
    ev.preventDefault();
    decide(form, ev.submitter);
  });

  // Back / Forward between items: load the address afresh (a decided item shows as reviewed). A decision
  // still on its way is waited for first, or the reload could show the item just decided as undecided.
  window.addEventListener("popstate", async (ev) => {
    if (state.popIgnored) {
      state.popIgnored = false;
      return;
    }
    if (!(ev.state && ev.state.review)) return;
    if (state.inflight) {
      status("Recording the last decision…", "");
      try { await state.inflight; } catch (e) { /* settle() reports failures itself */ }
    }
    window.location.reload();
  });

  function start() {
    const el = current();
    if (!el) return;
    history.replaceState({ review: el.dataset.task }, "", window.location.href);
    paintHeader(el);
    fitColumns();
    if (el.dataset.ahead && el.dataset.aheadUrl && el.querySelector("[data-verdict-form]")) {
      prefetch(el.dataset.ahead, el.dataset.aheadUrl);
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();

  // For tests and the benchmark: decisions still on their way, and whether the next screen is ready.
  window.reviewState = () => ({
    pending: state.busy.size,
    ready: !!(state.ready && state.ready.el),
  });
  // For the benchmark's comparison (bench/review_speed.py): decide the next item as if nothing was fetched ahead.
  window.reviewForgetAhead = () => { state.ready = null; };
})();
