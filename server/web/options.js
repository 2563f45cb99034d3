// The live options' controls, built from the server's table (`GET options`, which serves
// protocol/options.py): a new option gets its control here without a change to the page.
// An option is {name, label, help, default, kind: "switch" | "number" | "choice" | "set", low, high,
// choices}; a "set" is a list of distinct choices. A choice the server has nothing loaded for
// (an empty `choices`) gets no control.

/** The server's table of live options, in its order. */
export async function loadOptions(url = "options") {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`HTTP ${response.status} for ${url}`);
  return response.json();
}

/** 'on', '0.5', 'feather': a value as the page shows it (as the Python client's overlay does). */
export function showValue(value) {
  if (typeof value === "boolean") return value ? "on" : "off";
  if (Array.isArray(value)) return value.join("+") || "none";
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
  if (option.kind === "set") {
    // One checkbox per choice in a fieldset: their `change` events bubble to it, so it is the input.
    const input = Object.assign(document.createElement("fieldset"), { id });
    const legend = Object.assign(document.createElement("legend"), { textContent: text });
    const boxes = option.choices.map((choice) => {
      const box = Object.assign(document.createElement("input"), {
        type: "checkbox", value: choice, checked: option.default.includes(choice),
      });
      const item = Object.assign(document.createElement("label"), { className: "check" });
      item.append(box, ` ${choice}`);
      input.append(item);
      return box;
    });
    input.prepend(legend);
    element.append(input);
    return {
      element, input,
      read: () => boxes.filter((box) => box.checked).map((box) => box.value),
      write: (value) => boxes.forEach((box) => (box.checked = value.includes(box.value))),
    };
  }
  label.htmlFor = id;
  label.append(text);
  if (option.kind === "choice") {
    const input = Object.assign(document.createElement("select"), { id });
    const notes = option.notes ?? {};
    for (const choice of option.choices) {
      input.append(Object.assign(document.createElement("option"), { value: choice, textContent: choice,
                                                                    title: notes[choice] ?? "" }));
    }
    input.value = option.default;
    element.append(label, input);
    // A model's licence is shown where it is chosen: most face models are non-commercial.
    const note = Object.assign(document.createElement("small"), { id: `${id}-note`, className: "choice-note" });
    const showNote = () => (note.textContent = notes[input.value] ? `Licence: ${notes[input.value]}` : "");
    input.addEventListener("change", showNote);
    showNote();
    if (Object.keys(notes).length) element.append(note);
    const write = (value) => {
      input.value = String(value);
      showNote();
    };
    return { element, input, read: () => input.value, write };
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
