// 数据变更：新建、修改页按“写法”切换 SQL 与引导式修复
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("change-form");
  if (!form) return;
  const show = () => {
    const fix = form.querySelector("input[name=mode]:checked")?.value === "fix";
    document.getElementById("mode-fix").hidden = !fix;
    document.getElementById("mode-sql").hidden = fix;
  };
  form.addEventListener("change", show);
  show();
});
