// Stacked bars: chat tokens per department and day, from the JSON the usage page embeds.
document.addEventListener("DOMContentLoaded", () => {
  const canvas = document.getElementById("usage-chart");
  const source = document.getElementById("usage-chart-data");
  if (!canvas || !source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  new Chart(canvas, {
    type: "bar",
    data: { labels: data.labels, datasets: data.series.map((s) => ({ label: s.label, data: s.data })) },
    options: {
      animation: false,
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
    },
  });
});
