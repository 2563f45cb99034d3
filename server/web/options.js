// The live options' controls, built from the server's table (`GET options`, which serves
// protocol/options.py): a new option gets its control here without a change to the page.
// An option is {name, label, help, default, kind: "switch" | "number" | "choice", low, high, choices}.

/** The server's table of live options, in its order. */
export async function loadOptions(url = "options") {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`HTTP ${response.status} for ${url}`);
  return response.json();
}

/** 'on', '0.5', 'feather': a value as the page shows it (as the Python client's overlay does). */
export function showValue(value) {
  if (typeof value === "boolean") return value ? "on" : "off";
  return typeof value === "number" ? String(Number(value.toPrecision(6))) : String(value);
}

/** 'opacity 0.5, colour off': options as the page shows them; one the table lacks, by its name. */
export function describeOptions(table, values) {
  const labels = new Map(table.map((option) => [option.name, option.label]));
  return Object.entries(values)
    .map(([name, value]) => `${labels.get(name) ?? name.replaceAll("_", " ")} ${showValue(value)}`)
    .join(", ");
}

/** A slider's step: a twentieth of the range (opacity 0.05, mouth mask 5). */
export function sliderStep(option) {
  return (option.high - option.low) / 20;
}

/** Digits after the point that a slider's value needs: as many as its step has. */
export function decimals(step) {
  return (String(step).split(".")[1] ?? "").length;
}

/**
 * The form control of one option: {element, input, read(), write(value)}. Its input's id is
 * `opt-` and the option's name with dashes (opt-many-faces).
 */
export function optionControl(option, document = globalThis.document) {
  const id = `opt-${option.name.replaceAll("_", "-")}`;
  const text = option.label.charAt(0).toUpperCase() + option.label.slice(1);
  const element = document.createElement("div");
  element.className = "option";
  element.title = option.help;
  const label = document.createElement("label");
  if (option.kind === "switch") {
    const input = Object.assign(document.createElement("input"), { id, type: "checkbox", checked: option.default });
    label.className = "check";
    label.append(input, ` ${text}`);
    element.append(label);
    return { element, input, read: () => input.checked, write: (value) => (input.checked = Boolean(value)) };
  }
  label.htmlFor = id;
  label.append(text);
  if (option.kind === "choice") {
    const input = Object.assign(document.createElement("select"), { id });
    for (const choice of option.choices) {
      input.append(Object.assign(document.createElement("option"), { value: choice, textContent: choice }));
    }
    input.value = option.default;
    element.append(label, input);
    return { element, input, read: () => input.value, write: (value) => (input.value = String(value)) };
  }
  const step = sliderStep(option);
  const input = Object.assign(document.createElement("input"), {
    id, type: "range", min: String(option.low), max: String(option.high), step: String(step),
    value: String(option.default),
  });
  const output = Object.assign(document.createElement("output"), { id: `${id}-value` });
  output.setAttribute("for", id);
  const show = () => (output.textContent = Number(input.value).toFixed(decimals(step)));
  input.addEventListener("input", show);
  show();
  label.append(" ", output);
  element.append(label, input);
  return { element, input, read: () => Number(input.value), write: (value) => (input.value = String(Number(value))) };
}
