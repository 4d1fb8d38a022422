// Pair screen: the right (earlier) player follows the left one at t * scale + offset.
// Vendored, no dependencies. The offset and scale come from data attributes the server wrote.
// With one player only (the other video has no media file), the keyframes seek that one at the matched moment.
(() => {
  const box = document.querySelector("[data-pair-sync]");
  if (!box) return;
  const left = box.querySelector("video[data-pair-left]");
  const right = box.querySelector("video[data-pair-right]");
  if (!left && !right) return;
  const offset = parseFloat(box.dataset.offset) || 0;
  const scale = parseFloat(box.dataset.scale) || 1;
  const toOriginal = (t) => Math.max(0, t * scale + offset); // the earlier upload's moment of the later's t
  const toCopy = (t) => (t - offset) / scale; // the later upload's moment of the earlier's t
  const follow = () => {
    if (!left || !right) return;
    const t = toOriginal(left.currentTime);
    if (right.duration && t > right.duration) { right.pause(); return; }
    if (Math.abs(right.currentTime - t) > 0.25) right.currentTime = t;
  };
  if (left && right) {
    right.playbackRate = scale;
    left.addEventListener("seeked", follow);
    left.addEventListener("timeupdate", follow);
    left.addEventListener("play", () => { follow(); right.play().catch(() => {}); });
    left.addEventListener("pause", () => right.pause());
    left.addEventListener("ratechange", () => { right.playbackRate = left.playbackRate * scale; });
  }
  const within = (video, t) => t >= 0 && (!video.duration || t <= video.duration);
  document.addEventListener("click", (ev) => {
    const seek = ev.target.closest("[data-pair-seek]");
    if (seek) {
      const t = parseFloat(seek.dataset.pairSeek);
      if (left) { left.currentTime = t; follow(); } else right.currentTime = toOriginal(t);
      return;
    }
    // An earlier upload's keyframe (its own time): the later upload goes to the matching moment and the earlier
    // follows; a moment before the later upload starts (or after it ends) is shown on the earlier one alone.
    const original = ev.target.closest("[data-pair-seek-original]");
    if (original) {
      const t = parseFloat(original.dataset.pairSeekOriginal);
      const copyT = toCopy(t);
      if (!right) { left.currentTime = Math.min(Math.max(0, copyT), left.duration || Infinity); return; }
      if (left && within(left, copyT)) { left.currentTime = copyT; follow(); }
      else { if (left) left.pause(); right.currentTime = t; }
      return;
    }
    if (left && right && ev.target.closest("[data-pair-play]")) { if (left.paused) left.play(); else left.pause(); }
  });
})();
