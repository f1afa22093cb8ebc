// Charts of the KPI dashboard; the data comes from a JSON script element (the CSP forbids inline scripts).
document.addEventListener("DOMContentLoaded", () => {
  const data = JSON.parse(document.getElementById("kpi-data").textContent);
  const render = (id, option) => {
    const node = document.getElementById(id);
    if (node) echarts.init(node, null, { renderer: "svg" }).setOption({ animation: false, ...option });
  };
  render("chart-breaches", {
    tooltip: {}, legend: { data: ["首次响应超时", "解决超时"] },
    xAxis: { type: "category", data: data.breaches.map((b) => b.severity) }, yAxis: { type: "value", minInterval: 1 },
    series: [
      { name: "首次响应超时", type: "bar", data: data.breaches.map((b) => b.first_response) },
      { name: "解决超时", type: "bar", data: data.breaches.map((b) => b.resolution) },
    ],
  });
  render("chart-satisfaction", {
    tooltip: {}, xAxis: { type: "category", data: data.satisfaction.map((r) => r[0]) },
    yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
    series: [
      { name: "满意率", type: "bar", data: data.satisfaction.map((r) => r[1]) },
      { name: "要求", type: "line", data: data.satisfaction.map((r) => r[2]), lineStyle: { type: "dashed" } },
    ],
  });
  render("chart-systems", {
    tooltip: {}, grid: { left: 100 }, yAxis: { type: "category", data: data.systems.map((s) => s[0]).reverse() },
    xAxis: { type: "value", minInterval: 1 }, series: [{ type: "bar", data: data.systems.map((s) => s[1]).reverse() }],
  });
});
