"""The Radio stack a benchmark measures: the model server (mlflow/serve.sh) and the web app
under gunicorn (app/platform/gunicorn.conf.py), both on 127.0.0.1, with memory probes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench import procs

ROOT = Path(__file__).resolve().parent.parent


def env_base(**extra: str) -> dict[str, str]:
    """This interpreter's environment, telemetry off, plus ``extra``."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", **extra)
    return env


class Stack:
    """Model server + gunicorn app; ``app_env`` adds settings of the app."""

    def __init__(self, tmp: Path, **app_env: str) -> None:
        model_port, app_port = procs.free_port(), procs.free_port()
        self.server = procs.start(["bash", "mlflow/serve.sh"],
                                   env_base(MODEL_SERVER_PORT=str(model_port)),
                                   tmp / "model-server.log", ROOT)
        self.app = None
        try:
            self.cold_start_s = procs.wait_until(f"http://127.0.0.1:{model_port}/ping",
                                                 self.server)
            env = env_base(PORT=str(app_port), MLFLOW_URL=f"http://127.0.0.1:{model_port}",
                           RADIO_DATA_DIR=str(tmp / "data"), **app_env)
            self.app = procs.start(
                [sys.executable, "-m", "gunicorn", "-c", "app/platform/gunicorn.conf.py",
                 "app.platform.wsgi:app"], env, tmp / "app.log", ROOT)
            procs.wait_until(f"http://127.0.0.1:{app_port}/health", self.app)
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{app_port}"
        self.auth = procs.bearer(env)  # /predict needs a clinician's token

    def workers(self) -> list[int]:
        """The gunicorn worker processes."""
        assert self.app is not None
        return [p for p in procs.tree(self.app.pid) if p != self.app.pid]

    def memory(self) -> dict[str, float]:
        """RSS now and peak RSS of the app workers, RSS of the model server, in MB."""
        workers = self.workers()
        return {
            "app_worker_rss_mb": round(max((procs.rss_mb(p) for p in workers), default=0), 1),
            "app_worker_peak_rss_mb": round(
                max((procs.peak_rss_mb(p) for p in workers), default=0), 1),
            "model_server_rss_mb": round(
                sum(procs.rss_mb(p) for p in procs.tree(self.server.pid)), 1),
        }

    def stop(self) -> None:
        """Stop both servers."""
        if self.app is not None:
            procs.stop(self.app)
        procs.stop(self.server)
