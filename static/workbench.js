// Small, dependency-free behaviours shared by the screens (htmx does the requests).
document.addEventListener("click", (ev) => {
  const seek = ev.target.closest("[data-seek]");
  if (!seek) return;
  const player = document.querySelector("video[data-player]");
  if (player) { player.currentTime = parseFloat(seek.dataset.seek); player.focus(); }
});
