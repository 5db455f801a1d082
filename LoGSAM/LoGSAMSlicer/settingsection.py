"""The Advanced > Engine box of the panel (a mixin of ``LoGSAMWidget``): where the engine runs.

- *This computer* (default): the engine is a separate process started with ``PythonSlicer``.
- *Remote server*: a ``logsam serve`` URL and its token. The URL is kept in Slicer's settings
  (``LoGSAM/ServerURL``); the token in ``<Slicer settings folder>/LoGSAM/server-token``, a file
  only its owner can read (0600), never in the settings file or the scene.
"""

import os

import qt
import slicer

from . import engine
from .common import _

MODE_KEY, URL_KEY = "LoGSAM/EngineMode", "LoGSAM/ServerURL"
MODES = ((engine.LOCAL, "This computer (a separate process)"), (engine.REMOTE, "Remote server"))


def tokenPath() -> str:
    """Where the remote token is stored (next to Slicer's own settings file)."""
    return os.path.join(os.path.dirname(qt.QSettings().fileName()), "LoGSAM", "server-token")


class EngineSettingsMixin:
    """Needs ``self.ui``, ``self.logic``, ``self._startEngine`` and ``self._updateDependencyStatus``."""

    def setupEngineSettings(self) -> None:
        ui = self.ui
        for mode, title in MODES:
            ui.engineModeComboBox.addItem(_(title), mode)
        settings = qt.QSettings()
        mode = settings.value(MODE_KEY, engine.LOCAL)
        ui.engineModeComboBox.currentIndex = max(0, ui.engineModeComboBox.findData(mode))
        ui.serverUrlLineEdit.text = settings.value(URL_KEY, "")
        ui.serverTokenLineEdit.text = engine.loadToken(tokenPath())
        ui.serverTokenLineEdit.toolTip = _("Stored in {path}, readable by you only.").format(path=tokenPath())
        ui.engineModeComboBox.connect("currentIndexChanged(int)", lambda index: self.onEngineSettingsChanged())
        ui.serverUrlLineEdit.connect("editingFinished()", self.onEngineSettingsChanged)
        ui.serverTokenLineEdit.connect("editingFinished()", self.onEngineSettingsChanged)
        ui.connectEngineButton.connect("clicked(bool)", self.onConnectEngine)
        ui.deviceComboBox.connect("currentIndexChanged(int)", lambda index: self.onEngineSettingsChanged())
        self.onEngineSettingsChanged(save=False)

    def _engineMode(self) -> str:
        combo = self.ui.engineModeComboBox
        return combo.itemData(combo.currentIndex) or engine.LOCAL

    def onEngineSettingsChanged(self, save: bool = True) -> None:
        ui, connection = self.ui, self.logic.connection
        mode = self._engineMode()
        remote = mode == engine.REMOTE
        for widget in (ui.serverUrlLabel, ui.serverUrlLineEdit, ui.serverTokenLabel, ui.serverTokenLineEdit):
            widget.visible = remote
        ui.deviceComboBox.enabled = not remote  # a server chooses its own device
        url, token = ui.serverUrlLineEdit.text.strip(), ui.serverTokenLineEdit.text.strip()
        if save:
            settings = qt.QSettings()
            settings.setValue(MODE_KEY, mode)
            settings.setValue(URL_KEY, url)
            try:
                engine.saveToken(tokenPath(), token)
            except OSError as error:
                slicer.util.errorDisplay(_("The token could not be stored: {error}").format(error=error))
        if remote:
            if (connection.mode, connection.url, connection.token) != (engine.REMOTE, url.rstrip("/"), token):
                connection.useRemote(url, token)
                ui.engineStatusLabel.text = _("not connected (press Connect)")
        else:
            connection.useLocal(self.logic.serveArguments(ui.deviceComboBox.currentText))
            if connection.state == engine.STOPPED:
                ui.engineStatusLabel.text = _("starts on first use")
        ui.modelsCollapsibleGroupBox.title = _("Models on the server") if remote else _("Models")
        self._updateDependencyStatus()
        if hasattr(self, "_updateButtons"):
            self._updateButtons()

    def onConnectEngine(self) -> None:
        self.onEngineSettingsChanged()
        with slicer.util.WaitCursor():
            self._startEngine()
        if self.logic.connection.state == engine.READY:
            self.refreshModels()
