// Shows the text an ICEdit node reports about its last run (ui.PreviewText: e.g. ICEdit Prompt Encode's token
// counts, with a warning when a long prompt was cut) in a read-only box on the node itself.
import { app } from "../../../scripts/app.js";
import { ComfyWidgets } from "../../../scripts/widgets.js";

const WIDGET_NAME = "icedit_run_note";

app.registerExtension({
  name: "ICEdit.ShowRunNote",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData.name.startsWith("ICEdit")) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const text = message?.text;
      if (!text?.length) return;
      let widget = this.widgets?.find((w) => w.name === WIDGET_NAME);
      if (!widget) {
        widget = ComfyWidgets.STRING(this, WIDGET_NAME, ["STRING", { multiline: true }], app).widget;
        widget.serialize = false; // a report of the last run, not a setting: never saved in the workflow
        if (widget.inputEl) widget.inputEl.readOnly = true;
      }
      widget.value = text.join("\n");
      this.setDirtyCanvas?.(true, true);
    };
  },
});
