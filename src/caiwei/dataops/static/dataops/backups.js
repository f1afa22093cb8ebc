// 按范围恢复的差异表：表头的复选框选中或取消全部可选的行（内容安全策略不允许内联脚本）。
document.addEventListener("change", (event) => {
  const all = event.target.closest("[data-select-all]");
  if (!all) return;
  for (const box of document.querySelectorAll("#diff input[name=row]:not(:disabled)")) box.checked = all.checked;
});
