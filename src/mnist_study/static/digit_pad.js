// The drawing widget's view: a canvas for pen strokes, the 28 × 28 image the models receive,
// the detector's answer and the ten-class probabilities as bars. Python does the reading.

function element(tag, className, parent, text = "") {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  parent.appendChild(node);
  return node;
}

function render({ model, el }) {
  const size = model.get("size");
  const root = element("div", "digit-pad", el);
  const left = element("div", "digit-pad-column", root);
  const frame = element("div", "digit-pad-frame", left);
  const canvas = element("canvas", "digit-pad-canvas", frame);
  canvas.width = canvas.height = size;
  const clear = element("button", "digit-pad-clear", left, "Clear");
  const right = element("div", "digit-pad-column", root);
  element("div", "digit-pad-caption", right, "What the models see (28 × 28)");
  const preview = element("canvas", "digit-pad-preview", right);
  preview.width = preview.height = 28;
  const detector = element("div", "digit-pad-detector", right);
  const message = element("div", "digit-pad-message", right);
  const bars = element("div", "digit-pad-bars", right);
  const rows = [...Array(10).keys()].map((digit) => {
    const row = element("div", "digit-pad-row", bars);
    element("span", "digit-pad-label", row, String(digit));
    const track = element("span", "digit-pad-track", row);
    const bar = element("span", "digit-pad-bar", track);
    const value = element("span", "digit-pad-value", row);
    return { bar, value };
  });

  const pen = canvas.getContext("2d");
  let stroke = null;

  function drawStrokes(strokes) {
    pen.fillStyle = "#000";
    pen.fillRect(0, 0, size, size);
    pen.strokeStyle = pen.fillStyle = "#fff";
    pen.lineWidth = model.get("pen");
    pen.lineCap = pen.lineJoin = "round";
    for (const points of strokes) {
      pen.beginPath();
      pen.moveTo(points[0][0], points[0][1]);
      for (const [x, y] of points) pen.lineTo(x, y);
      pen.stroke();
    }
  }

  function showAnswer() {
    const pixels = model.get("prepared");
    const image = preview.getContext("2d").createImageData(28, 28);
    pixels.forEach((grey, i) => {
      image.data.set([grey, grey, grey, 255], 4 * i);
    });
    if (!pixels.length) for (let i = 3; i < image.data.length; i += 4) image.data[i] = 255;
    preview.getContext("2d").putImageData(image, 0, 0);
    const answer = model.get("detector");
    detector.textContent = answer ? `Is it a 5? ${answer === "5" ? "Yes: 5" : "No: not 5"}` : "";
    detector.dataset.answer = answer;
    message.textContent = model.get("message");
    const probabilities = model.get("probabilities");
    rows.forEach(({ bar, value }, digit) => {
      const p = probabilities.length ? probabilities[digit] : 0;
      bar.style.width = `${100 * p}%`;
      value.textContent = probabilities.length ? `${Math.round(100 * p)}%` : "";
    });
  }

  function point(event) {
    const box = canvas.getBoundingClientRect();
    const scale = size / box.width;
    const x = Math.round((event.clientX - box.left) * scale * 10) / 10;
    const y = Math.round((event.clientY - box.top) * scale * 10) / 10;
    return [x, y];
  }

  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    stroke = [point(event)];
    drawStrokes([...model.get("strokes"), stroke]);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!stroke) return;
    stroke.push(point(event));
    drawStrokes([...model.get("strokes"), stroke]);
  });
  const finish = () => {
    if (!stroke) return;
    model.set("strokes", [...model.get("strokes"), stroke]);
    stroke = null;
    model.save_changes();
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  clear.addEventListener("click", () => {
    model.set("strokes", []);
    model.save_changes();
  });

  model.on("change:strokes", () => drawStrokes(model.get("strokes")));
  model.on("change:message", showAnswer);
  model.on("change:prepared", showAnswer);
  model.on("change:probabilities", showAnswer);
  drawStrokes(model.get("strokes"));
  showAnswer();
}

export default { render };
