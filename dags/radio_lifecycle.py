"""Radio's scheduled lifecycle jobs as Airflow DAGs, for sites that run Airflow.

The default installation runs the same jobs as systemd timers (the playbooks install
them); both call :func:`lifecycle.jobs.run_job`, on the schedules of
:data:`lifecycle.jobs.SCHEDULES`, and both e-mail through :mod:`lifecycle.notify` (SMTP
settings from the worker's environment), so Airflow needs no e-mail settings of its own.
A job that fails also fails its task, so Airflow shows it and retries it.

Put the project on the scheduler's and workers' ``PYTHONPATH`` (with the ``serve`` extra
installed for deploy-ready) and this folder in ``dags_folder``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from lifecycle.jobs import SCHEDULES


def lifecycle_dag(name: str, cron: str) -> DAG:
    """One DAG running the lifecycle job ``name`` on ``cron``."""
    with DAG(
        dag_id=f"radio_{name.replace('-', '_')}",
        description=f"Radio lifecycle job {name} (lifecycle.jobs)",
        schedule=cron,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["radio", "lifecycle"],
        default_args={"retries": 0, "execution_timeout": timedelta(hours=2)},
    ) as dag:

        @task(task_id=name.replace("-", "_"))
        def run_job() -> dict:
            from lifecycle.jobs import run_job as run
            from lifecycle.settings import load

            result = run(name, load())
            if not result["ok"]:
                raise RuntimeError(f"lifecycle job {name} failed: {result.get('detail', '')}")
            return result

        run_job()
    return dag


DAGS = {name: lifecycle_dag(name, cron) for name, (_, cron) in SCHEDULES.items()}
globals().update({dag.dag_id: dag for dag in DAGS.values()})
