// Pair screen: the right (earlier) player follows the left one at t * scale + offset.
// Vendored, no dependencies. The offset and scale come from data attributes the server wrote.
(() => {
  const box = document.querySelector("[data-pair-sync]");
  if (!box) return;
  const left = box.querySelector("video[data-pair-left]");
  const right = box.querySelector("video[data-pair-right]");
  if (!left || !right) return;
  const offset = parseFloat(box.dataset.offset) || 0;
  const scale = parseFloat(box.dataset.scale) || 1;
  const target = () => Math.max(0, left.currentTime * scale + offset);
  const follow = () => {
    const t = target();
    if (right.duration && t > right.duration) { right.pause(); return; }
    if (Math.abs(right.currentTime - t) > 0.25) right.currentTime = t;
  };
  right.playbackRate = scale;
  left.addEventListener("seeked", follow);
  left.addEventListener("timeupdate", follow);
  left.addEventListener("play", () => { follow(); right.play().catch(() => {}); });
  left.addEventListener("pause", () => right.pause());
  left.addEventListener("ratechange", () => { right.playbackRate = left.playbackRate * scale; });
  document.addEventListener("click", (ev) => {
    const seek = ev.target.closest("[data-pair-seek]");
    if (seek) { left.currentTime = parseFloat(seek.dataset.pairSeek); follow(); return; }
    // An earlier upload's keyframe (its own time): the later upload goes to the matching moment and the earlier
    // follows; a moment before the later upload starts (or after it ends) is shown on the earlier one alone.
    const original = ev.target.closest("[data-pair-seek-original]");
    if (original) {
      const t = parseFloat(original.dataset.pairSeekOriginal);
      const copyT = (t - offset) / scale;
      if (copyT >= 0 && (!left.duration || copyT <= left.duration)) { left.currentTime = copyT; follow(); }
      else { left.pause(); right.currentTime = t; }
      return;
    }
    if (ev.target.closest("[data-pair-play]")) { if (left.paused) left.play(); else left.pause(); }
  });
})();
