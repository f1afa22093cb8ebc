// Trend of one rule's count over the database's runs; data from a JSON script element (the CSP forbids inline scripts).
document.addEventListener("DOMContentLoaded", () => {
  const node = document.getElementById("chart-trend");
  const data = JSON.parse(document.getElementById("trend-data").textContent);
  if (!node || !data.length) return;
  echarts.init(node, null, { renderer: "svg" }).setOption({
    animation: false, tooltip: { trigger: "axis" }, grid: { left: 40, right: 10, top: 10, bottom: 30 },
    xAxis: { type: "category", data: data.map((d) => `#${d.run} ${d.at}`) },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ name: "问题条数", type: "line", data: data.map((d) => d.count), areaStyle: {} }],
  });
});
