// Token-length histogram of a dataset version, with the maximum length marked, from the JSON the page embeds.
document.addEventListener("DOMContentLoaded", () => {
  const canvas = document.getElementById("token-length-histogram");
  const source = document.getElementById("token-length-data");
  if (!canvas || !source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  // Bars of bins that reach past the maximum length are drawn in red.
  const colors = data.edges.slice(1).map((end) => (end - 1 > data.max_length ? "#dc2626" : "#2563eb"));
  new Chart(canvas, {
    type: "bar",
    data: { labels: data.labels, datasets: [{ label: data.label, data: data.counts, backgroundColor: colors }] },
    options: {
      animation: false,
      plugins: { legend: { display: false }, title: { display: true, text: `${data.max_label}: ${data.max_length}` } },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
});
