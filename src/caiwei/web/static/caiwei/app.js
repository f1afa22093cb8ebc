// Confirmation for buttons that carry data-confirm (no inline scripts: the CSP forbids them).
document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-confirm]");
  if (target && !window.confirm(target.dataset.confirm)) {
    event.preventDefault();
  }
});
