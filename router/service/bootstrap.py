"""Bring the database and the routing model up while the service already serves.

`Bootstrap.run` applies the migrations, then loads the active model. Where none is
stored, the replica that takes the `model-training` lease trains one from a bundled
dataset in a child process started with the "spawn" method, so the parent keeps
serving requests. The other replicas poll for the stored model, and take the
lease themselves if its holder stops renewing it.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from router.classification.model import RoutingModel
from router.classification.registry import load_model
from router.enrichment.registry import build_pipeline
from router.mapping import MappingSet, load_mappings
from router.routing import TicketRouter
from router.service.logs import describe_error
from router.service.metrics import ServiceMetrics
from router.service.settings import ServiceSettings
from router.service.transactions import write_transaction
from router.store import db
from router.store.errors import ModelNotFoundError
from router.store.leases import acquire_lease, database_now, release_lease

logger = logging.getLogger(__name__)

TRAINING_LEASE = "model-training"
# Seconds between two tries when the database cannot be reached at start-up.
DATABASE_RETRY_SECONDS = 2.0


@dataclass
class StartupState:
    """What the start-up has reached, read by /readyz and the worker."""

    migrations_current: bool = False
    migrations_detail: str = "not checked yet"
    router: TicketRouter | None = None
    model_version: str | None = None
    model_detail: str = "not loaded yet"


class Bootstrap:
    """Apply migrations and obtain the model on a background thread."""

    def __init__(
        self,
        *,
        settings: ServiceSettings,
        engine: Engine,
        session_factory: sessionmaker[Session],
        mappings: MappingSet,
        metrics: ServiceMetrics,
        state: StartupState,
        on_migrated: Callable[[], None] | None = None,
        on_model: Callable[[TicketRouter], None] | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._session_factory = session_factory
        self._mappings = mappings
        self._metrics = metrics
        self.state = state
        self._on_migrated = on_migrated
        self._on_model = on_model
        # Set once start-up found the migrations current; the runtime's probe
        # checks them again from then on.
        self.migrated = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._child: multiprocessing.process.BaseProcess | None = None
        self.ready = threading.Event()

    def start(self) -> None:
        """Start the start-up thread."""
        self._thread = threading.Thread(target=self.run, name="bootstrap", daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop waiting, ending a training child process if one runs."""
        self._stop.set()
        child = self._child
        if child is not None and child.is_alive():
            logger.info("Stopping the model training process %s", child.pid)
            child.terminate()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """Apply the migrations, then load or train the model, retrying until done."""
        if not self._retry(self._migrate):
            return
        if self._on_migrated is not None:
            self._on_migrated()
        if not self._retry(self._obtain_model):
            return
        router = self.state.router
        if router is not None and self._on_model is not None:
            self._on_model(router)
        self.ready.set()

    def _retry(self, step: Callable[[], bool]) -> bool:
        while not self._stop.is_set():
            try:
                if step():
                    return True
            except SQLAlchemyError as error:
                self.state.model_detail = "waiting for the database"
                logger.warning(
                    "Start-up waits for the database: %s", describe_error(error)
                )
                self._stop.wait(DATABASE_RETRY_SECONDS)
        return False

    def _migrate(self) -> bool:
        if self._settings.run_migrations:
            db.upgrade(self._engine)
        if db.pending_migrations(self._engine):
            self.state.migrations_detail = (
                f"the database is not at revision {db.head_revision()}; run "
                "`opsroute db upgrade` or start without --no-migrate"
            )
            self.state.migrations_current = False
            logger.warning("Migrations pending: %s", self.state.migrations_detail)
            self._stop.wait(self._settings.model_poll_seconds)
            return False
        self.state.migrations_current = True
        self.state.migrations_detail = "current"
        self.migrated = True
        return True

    def _obtain_model(self) -> bool:
        model = self._load_active()
        if model is not None:
            self._use(model)
            return True
        holder = self._settings.replica_id
        if self._take_lease(holder):
            self._train_while_holding(holder)
        else:
            self.state.model_detail = (
                "no model stored yet; another replica is training one"
            )
            self._stop.wait(self._settings.model_poll_seconds)
        return False

    def _load_active(self) -> RoutingModel | None:
        with self._session_factory() as session:
            try:
                return load_model(session, cache_dir=self._settings.model_cache_dir)
            except ModelNotFoundError:
                return None

    def _use(self, model: RoutingModel) -> None:
        self.state.router = TicketRouter(
            model=model,
            mappings=self._mappings,
            enrichment=build_pipeline(
                self._mappings.enrichment, session_factory=self._session_factory
            ),
        )
        self.state.model_version = model.version
        self.state.model_detail = "loaded"
        self._metrics.model_ready.set(1)
        logger.info("Routing with model %s", model.version)

    def _take_lease(self, holder: str) -> bool:
        with write_transaction(self._session_factory) as session:
            return acquire_lease(
                session,
                name=TRAINING_LEASE,
                holder=holder,
                ttl_seconds=self._settings.lease_ttl_seconds,
                now=database_now(session),
            )

    def _train_while_holding(self, holder: str) -> None:
        dataset = self._settings.model_dataset
        self.state.model_detail = (
            f"no model stored; training one from the bundled {dataset} dataset"
        )
        context = multiprocessing.get_context("spawn")
        child = context.Process(
            target=train_and_store,
            kwargs={
                "database_url": self._settings.database_url,
                "dataset": dataset,
                "cache_dir": str(self._settings.model_cache_dir),
            },
            name="opsroute-train",
            daemon=True,
        )
        started = time.monotonic()
        child.start()
        self._child = child
        logger.info("Training a model on %s in process %s", dataset, child.pid)
        renew_every = self._settings.lease_ttl_seconds / 3
        try:
            while child.is_alive() and not self._stop.is_set():
                child.join(renew_every)
                self._renew(holder)
        finally:
            self._child = None
            self._release(holder)
        if child.exitcode != 0:
            if not self._stop.is_set():
                self.state.model_detail = (
                    f"training on {dataset} failed (exit code {child.exitcode}); "
                    "retrying, see the log of process opsroute-train"
                )
                logger.error(
                    "Model training process exited with code %s", child.exitcode
                )
                self._stop.wait(self._settings.model_poll_seconds)
            return
        logger.info("Model trained in %.1f s", time.monotonic() - started)

    def _renew(self, holder: str) -> None:
        try:
            if not self._take_lease(holder):
                logger.warning("Lost lease %s while training", TRAINING_LEASE)
        except SQLAlchemyError as error:
            logger.warning(
                "Cannot renew lease %s: %s", TRAINING_LEASE, describe_error(error)
            )

    def _release(self, holder: str) -> None:
        try:
            with write_transaction(self._session_factory) as session:
                release_lease(session, name=TRAINING_LEASE, holder=holder)
        except SQLAlchemyError as error:
            logger.warning(
                "Cannot release lease %s: %s", TRAINING_LEASE, describe_error(error)
            )


def train_and_store(*, database_url: str, dataset: str, cache_dir: str) -> None:
    """Train a model on a bundled dataset and store it as the active one.

    This runs in the child process, so it imports and connects on its own. The
    model is the one `opsroute demo` trains for the same data (80% of it, the same
    parameters), so a stored demo model is reused instead of trained again.
    """
    from router.classification.evaluation import hold_out
    from router.classification.provisioning import obtain_model
    from router.classification.training import TrainingParams
    from router.datasets.catalog import load_examples
    from router.settings import CoreSettings
    from router.store.registry import activate_model

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    core = CoreSettings(database_url=database_url, model_cache_dir=Path(cache_dir))
    engine = db.make_engine(database_url)
    try:
        params = TrainingParams()
        split = hold_out(load_examples(dataset), params=params)
        factory = db.session_factory(engine)
        model, trained, _ = obtain_model(
            factory,
            dataset=dataset,
            train=split.train,
            settings=core,
            params=params,
            retrain=False,
            held_out=split.test,
            threshold=load_mappings(core.mappings_dir).thresholds.default,
        )
        if not trained:
            # A reused model is stored but may not be the active one.
            with factory() as session, session.begin():
                activate_model(session, version=model.version, actor="opsroute")
    finally:
        engine.dispose()
