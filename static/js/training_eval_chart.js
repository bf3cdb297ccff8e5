// Evaluation page: one bar group per metric, one series per compared model version.
document.addEventListener("DOMContentLoaded", () => {
  const canvas = document.getElementById("evaluation-chart");
  const source = document.getElementById("evaluation-chart-data");
  if (!canvas || !source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  new Chart(canvas, {
    type: "bar",
    data: { labels: data.labels, datasets: Object.entries(data.series).map(([label, values]) => ({ label, data: values })) },
    options: { animation: false, scales: { y: { min: 0, max: 1 } } },
  });
});
