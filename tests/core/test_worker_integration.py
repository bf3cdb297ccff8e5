"""A real Celery worker process runs a job end to end, through a real broker."""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import redis
from django.conf import settings
from django.db import connection

from config.celery import app
from config.env import BASE_DIR
from core.models import Job, JobStatus
from core.services import job_create

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@contextlib.contextmanager
def broker(url: str, transport_options: dict):
    """Point the Celery app of this test process at another broker for the duration."""
    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    app.conf.broker_url, app.conf.broker_transport_options = url, transport_options

    def reset_pools():
        app._pool = None
        app.amqp._producer_pool = None

    reset_pools()
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
        reset_pools()


@contextlib.contextmanager
def worker_process(extra_env: dict):
    env = {
        **os.environ,
        "DATABASE_URL": settings.DATABASE_URL,
        "DATABASE_NAME": connection.settings_dict["NAME"],  # the test database
        **extra_env,
    }
    if "BROKER_URL" not in extra_env:
        env.pop("BROKER_URL", None)
    cmd = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO",
        "-Q", "default,ingest,gpu", "-n", f"test-{uuid.uuid4().hex[:8]}@%h",
        "--without-mingle", "--without-gossip", "--without-heartbeat",
    ]
    proc = subprocess.Popen(cmd, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_finished(job: Job, proc: subprocess.Popen, timeout: float = 90) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            return job
        if proc.poll() is not None:
            pytest.fail(f"worker exited early:\n{proc.stdout.read()}")
        time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    pytest.fail(f"job still {job.status} after {timeout}s; worker log:\n{proc.communicate(timeout=20)[0]}")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_real_worker_runs_a_job_through_redis(people):
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # a clear failure when the Redis server is not running
    client.flushdb()
    with broker(REDIS_URL, {}), worker_process({"BROKER_URL": REDIS_URL}) as proc:
        job = job_create(actor=people["superuser"], kind="system_check", params={"echo": "through redis"})
        job = wait_finished(job, proc)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.progress == 1.0
    assert job.attempts == 1
    assert job.result["echo"] == "through redis"
    assert job.result["worker_pid"] != os.getpid()  # ran in the worker process, not here
    assert job.result["pgvector"]  # the worker reached PostgreSQL with pgvector
    assert job.result["embedding_model_dir_exists"] is True


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_without_broker_url_a_worker_runs_jobs_over_the_filesystem_transport(people, tmp_path):
    folders = {name: tmp_path / "celery" / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    options = {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
    }
    # VAR_DIR moves the worker's filesystem broker folders (var/celery/...) into tmp_path.
    with broker("filesystem://", options), worker_process({"VAR_DIR": str(tmp_path)}) as proc:
        job = job_create(actor=people["superuser"], kind="system_check", params={"echo": "through files"})
        job = wait_finished(job, proc)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["echo"] == "through files"
    assert job.result["worker_pid"] != os.getpid()
