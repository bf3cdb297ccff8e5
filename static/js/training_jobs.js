// Fine-tuning job page: the loss chart, and live events polled from the job's events API.
document.addEventListener("DOMContentLoaded", () => {
  const summary = document.getElementById("job-summary");
  const canvas = document.getElementById("loss-chart");
  const source = document.getElementById("loss-series");
  if (!summary || !canvas || !source) return;
  const series = JSON.parse(source.textContent);
  const points = (steps, values) => steps.map((s, i) => ({ x: s, y: values[i] }));
  let chart = null;
  if (typeof Chart !== "undefined") {
    chart = new Chart(canvas, {
      type: "line",
      data: {
        datasets: [
          { label: "loss", data: points(series.steps, series.loss), tension: 0.1, pointRadius: 0 },
          { label: "eval_loss", data: points(series.eval_steps, series.eval_loss), tension: 0.1 },
        ],
      },
      options: { animation: false, parsing: false, scales: { x: { type: "linear", title: { display: true, text: "step" } } } },
    });
  }
  const list = document.getElementById("job-events");
  let after = 0;
  list.querySelectorAll("li[data-id]").forEach((li) => { after = Math.max(after, Number(li.dataset.id)); });
  const terminal = new Set(["succeeded", "failed", "cancelled"]);
  const text = (id, value) => { const el = document.getElementById(id); if (el && value !== undefined && value !== null) el.textContent = value; };
  async function poll() {
    try {
      const response = await fetch(`${summary.dataset.eventsUrl}?after=${after}`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      const body = await response.json();
      for (const event of body.data) {
        after = Math.max(after, event.id);
        const li = document.createElement("li");
        li.dataset.id = event.id;
        li.className = `level-${event.level}`;
        li.textContent = `${new Date(event.created_at * 1000).toLocaleTimeString()} ${event.message}`;
        list.prepend(li);
        const d = event.data || {};
        if (event.type === "metrics" && chart) {
          // a resumed run drops the points after its checkpoint: keep the curve monotonic in steps
          if (d.loss !== undefined) {
            const data = chart.data.datasets[0].data;
            while (data.length && data[data.length - 1].x >= d.step) data.pop();
            data.push({ x: d.step, y: d.loss });
            text("job-step", d.step); text("job-loss", d.loss.toFixed(4)); text("job-tps", d.tokens_per_s); text("job-eta", d.eta_s);
          }
          if (d.eval_loss !== undefined) chart.data.datasets[1].data.push({ x: d.step, y: d.eval_loss });
        }
      }
      if (chart && body.data.length) chart.update();
      const progress = document.getElementById("job-progress");
      if (progress) progress.value = body.progress;
      if (body.status !== summary.dataset.status) {
        summary.dataset.status = body.status;
        if (terminal.has(body.status)) { window.location.reload(); return; }
        text("job-status", body.status);
      }
    } finally {
      if (!terminal.has(summary.dataset.status)) window.setTimeout(poll, 2000);
    }
  }
  if (!terminal.has(summary.dataset.status)) window.setTimeout(poll, 1000);
});
