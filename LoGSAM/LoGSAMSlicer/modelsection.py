"""The Advanced > Models box of the panel (a mixin of ``LoGSAMWidget``).

Local mode: the model cache on this computer, shared with the engine process and the ``logsam``
command (list, download, verify, import, remove). Remote mode: the server's models, listed and
verified through the engine client; they are downloaded on the server (``logsam models download``).
"""

import os

import qt
import slicer

from . import engine
from .common import _, formatSize


class ModelsSectionMixin:
    """Needs ``self.ui``, ``self.logic``, ``self._startJob`` and ``self._updateButtons`` of the widget."""

    def _remote(self) -> bool:
        return self.logic.connection.mode == engine.REMOTE

    def _selectedModelId(self) -> str | None:
        if not hasattr(self, "ui"):
            return None
        items = self.ui.modelsTable.selectedItems()
        if not items:
            return None
        first = self.ui.modelsTable.item(items[0].row(), 0)
        return first.data(qt.Qt.UserRole) if first is not None else None

    def _modelRows(self) -> tuple:
        """(rows of (id, title, stage, size, status, tooltip), where they are)."""
        if self._remote():
            client = self.logic.connection.client()
            rows = [(m["id"], m.get("title") or m["id"], m.get("stage", ""), formatSize(m.get("size")),
                     _("on the server") if m.get("cached") else _("not on the server"), m["id"])
                    for m in client.models()]
            return rows, _("Models on {url}; download them there with `logsam models download`.").format(
                url=self.logic.connection.url)
        from LoGSAMLib import models

        rows = []
        for spec in models.registry().values():
            try:
                status = _("downloaded") if models.is_cached(spec.id) else _("not downloaded")
            except Exception as error:
                status = str(error)
            rows.append((spec.id, spec.title or spec.id, spec.stage, formatSize(spec.size), status,
                         f"{spec.id}\n{spec.license}\n{spec.notes}".strip()))
        return rows, _("Cache folder: {folder}").format(folder=models.cache_dir())

    def refreshModels(self) -> None:
        table = self.ui.modelsTable
        selected = self._selectedModelId()
        table.setRowCount(0)
        try:
            rows, where = self._modelRows()
        except Exception as error:
            self.ui.modelsStatusLabel.text = _("Model list unavailable: {error}").format(error=error)
            return
        table.setRowCount(len(rows))
        for row, (modelId, *values, tooltip) in enumerate(rows):
            for column, value in enumerate(values):
                item = qt.QTableWidgetItem(value)
                item.setToolTip(tooltip)
                if column == 0:
                    item.setData(qt.Qt.UserRole, modelId)
                table.setItem(row, column, item)
            if modelId == selected:
                table.selectRow(row)
        self.ui.modelsStatusLabel.text = where
        self._updateButtons()

    def _updateModelButtons(self, idle: bool) -> None:
        ui = self.ui
        selected = self._selectedModelId() is not None
        local = not self._remote()
        for button in (ui.downloadModelButton, ui.importModelButton, ui.clearModelButton):
            button.enabled = idle and selected and local
        ui.openCacheFolderButton.enabled = local
        ui.verifyModelsButton.enabled = idle

    def onDownloadModel(self) -> None:
        from LoGSAMLib import models

        modelId = self._selectedModelId()
        spec = models.get_spec(modelId)
        hosts = sorted({f.url.split("/")[2] for f in spec.files if f.url and "://" in f.url})
        question = _("Download {title} ({size}) from {hosts}?\nThe file is checked against its checksum "
                     "before it is used.").format(title=spec.title, size=formatSize(spec.size),
                                                  hosts=", ".join(hosts) or _("its package"))
        if not slicer.util.confirmOkCancelDisplay(question, windowTitle=_("LoGSAM: download model")):
            return

        def work(progress, cancel):
            def progressOrCancel(stage, fraction, message=""):
                cancel.check()  # downloads have no cancel argument: stop from the progress callback
                progress("download", fraction, message)

            return models.download(modelId, progress=progressOrCancel)

        self._startJob("download", work, lambda path: self._onModelJobDone(_("Downloaded {path}").format(path=path)),
                       progressBar=self.ui.modelsProgressBar)

    def onVerifyModels(self) -> None:
        def done(results):
            usable = ("ok", "recorded", "missing")
            bad = [f"{mid}/{name}: {status}" for mid, name, status in results if status not in usable]
            present = sum(1 for _mid, _name, status in results if status in ("ok", "recorded"))
            text = _("{count} files verified.").format(count=present)
            if bad:
                text += " " + _("Problems: {problems}").format(problems="; ".join(bad))
                slicer.util.warningDisplay("\n".join(bad), windowTitle=_("LoGSAM: model check"))
            self._onModelJobDone(text)

        if self._remote():
            try:
                with slicer.util.WaitCursor():
                    results = self.logic.connection.client().verify_models()
            except Exception as error:
                slicer.util.errorDisplay(_("The server could not verify its models: {error}").format(error=error))
                return
            done([(r["id"], r["file"], r["status"]) for r in results])
            return
        from LoGSAMLib import models

        def work(progress, cancel):
            progress("verify", 0.0, _("hashing the cached files"))
            return models.verify()

        self._startJob("verify", work, done, progressBar=self.ui.modelsProgressBar)

    def onImportModel(self) -> None:
        from LoGSAMLib import models

        modelId = self._selectedModelId()
        path = qt.QFileDialog.getOpenFileName(slicer.util.mainWindow(),
                                              _("Import a file for {model}").format(model=modelId), "")
        if not path:
            return

        def work(progress, cancel):
            progress("import", 0.0, _("checking {name}").format(name=os.path.basename(path)))
            return models.import_file(modelId, path)

        self._startJob("import", work, lambda target: self._onModelJobDone(_("Imported to {path}").format(path=target)),
                       progressBar=self.ui.modelsProgressBar)

    def onRemoveModel(self) -> None:
        from LoGSAMLib import models

        modelId = self._selectedModelId()
        if not slicer.util.confirmYesNoDisplay(
                _("Delete the cached files of {model}? A running local engine is restarted so that it does "
                  "not keep a loaded copy.").format(model=modelId), windowTitle=_("LoGSAM: remove model")):
            return
        try:
            models.clear(modelId)
        except Exception as error:
            slicer.util.errorDisplay(_("Removing the model failed: {error}").format(error=error))
        if self.logic.connection.mode == engine.LOCAL and self.logic.connection.state == engine.READY:
            self.logic.connection.stop()  # a loaded copy must not outlive its file
            self._startEngine()
        self.refreshModels()

    def onOpenCacheFolder(self) -> None:
        from LoGSAMLib import models

        folder = models.cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(str(folder)))

    def _onModelJobDone(self, message: str) -> None:
        self.refreshModels()
        self.ui.modelsStatusLabel.text = message
