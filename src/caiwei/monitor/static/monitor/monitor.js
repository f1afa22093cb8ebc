// History of one monitored item; data from a JSON script element (the CSP forbids inline scripts).
document.addEventListener("DOMContentLoaded", () => {
  const node = document.getElementById("chart-history");
  const source = document.getElementById("history-data");
  if (!node || !source || typeof echarts === "undefined") return;
  const data = JSON.parse(source.textContent);
  if (!data.length) return;
  node.classList.add("cw-chart-on");
  echarts.init(node, null, { renderer: "svg", height: 260 }).setOption({
    animation: false, tooltip: { trigger: "axis" }, grid: { left: 50, right: 10, top: 10, bottom: 30 },
    xAxis: { type: "time" },
    yAxis: { type: "value", scale: true },
    series: [
      { name: "值", type: "line", showSymbol: false, data: data.map((d) => [d.at, d.value]) },
      { name: "失败", type: "scatter", symbolSize: 6, itemStyle: { color: "#dc3545" },
        data: data.filter((d) => !d.ok).map((d) => [d.at, d.value ?? 0]) },
    ],
  });
});
