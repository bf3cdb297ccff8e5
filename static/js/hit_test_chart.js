// Line chart of every hit-test run (MRR@10 per mode), from the JSON the page embeds.
document.addEventListener("DOMContentLoaded", () => {
  const canvas = document.getElementById("hit-test-history");
  const source = document.getElementById("hit-test-history-data");
  if (!canvas || !source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  new Chart(canvas, {
    type: "line",
    data: {
      labels: data.labels,
      datasets: Object.entries(data.series).map(([mode, values]) => ({ label: mode, data: values, tension: 0.1 })),
    },
    options: { scales: { y: { min: 0, max: 1 } }, animation: false },
  });
});
