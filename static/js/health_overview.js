// Knowledge health overview: findings per day (conflicts, changes not carried over).
document.addEventListener("DOMContentLoaded", () => {
  const canvas = document.getElementById("health-trend");
  const source = document.getElementById("health-trend-data");
  if (!canvas || !source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  new Chart(canvas, {
    type: "line",
    data: {
      labels: data.days,
      datasets: [
        { label: canvas.dataset.conflicts, data: data.conflicts },
        { label: canvas.dataset.carryOvers, data: data.carry_overs },
        { label: canvas.dataset.questions, data: data.questions },
      ],
    },
    options: { animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
});
