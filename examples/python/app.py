"""A checkout page that runs an abtest experiment.

Per request the application routes the visitor (ab_route_user), renders that branch's
page and records the outcome of a checkout (ab_record_query: an attempt and whether
payment succeeded; ab_record_event: the purchase and its amount). /admin shows
ab_report. It talks to PostgreSQL with psycopg 3 and a connection pool, through
PgBouncer in transaction pooling mode, and never fails a page because of the
experiment: any error of the routing call shows the control and is logged.

Configuration is read from the environment (see README.md):

    ABTEST_DSN='host=127.0.0.1 port=6432 dbname=shop user=shop_app' /usr/bin/python3 app.py
"""

import json
import logging
import os
import re
import secrets
import threading
import time
from decimal import Decimal, InvalidOperation

import psycopg
from flask import Flask, Response, abort, make_response, render_template, request
from psycopg_pool import ConnectionPool, PoolTimeout
from werkzeug.serving import WSGIRequestHandler

log = logging.getLogger("checkout")

# A decline test card of the stub payment provider: every other card is charged.
DECLINED_CARD = "4000000000000002"
# The page of each branch of the experiment; a branch without one gets the control's.
PAGES = {"control": "checkout_control.html", "one_page": "checkout_one_page.html"}
VISITOR_COOKIE = "visitor"
VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# One statement, one round trip, its own (implicit) transaction: the visitor's id is set
# for the transaction only (is_local = true), so that nothing of this request stays on
# the PgBouncer server connection for the next client (a SET without LOCAL would stay).
ROUTE_SQL = "SELECT set_config('app.visitor', %(visitor)s, true), ab_route_user(%(experiment)s, %(visitor)s)"
ORDER_SQL = "INSERT INTO orders (visitor, amount) VALUES (%s, %s) RETURNING id"
# The outcome of a checkout: an attempt (a "query": its latency, whether payment
# succeeded) and, when it did, a purchase event with the amount.
RECORD_DECLINED_SQL = "SELECT ab_record_query(%(experiment)s, %(branch)s, %(latency_ms)s, false)"
RECORD_PAID_SQL = """SELECT ab_record_query(%(experiment)s, %(branch)s, %(latency_ms)s, true),
                            ab_record_event(%(experiment)s, %(branch)s, 'purchase', %(amount)s)"""


class Settings:
    """Everything configurable, from the environment."""

    def __init__(self, env=os.environ):
        self.dsn = env.get("ABTEST_DSN", "host=127.0.0.1 port=6432 dbname=shop connect_timeout=3")
        self.admin_dsn = env.get("ABTEST_ADMIN_DSN") or self.dsn
        self.admin_token = env.get("ABTEST_ADMIN_TOKEN") or None
        self.experiment = env.get("ABTEST_EXPERIMENT", "checkout_v2")
        self.control = env.get("ABTEST_CONTROL", "control")
        self.pool_min = int(env.get("ABTEST_POOL_MIN", "2"))
        self.pool_max = int(env.get("ABTEST_POOL_MAX", "8"))
        # A page waits this long for a connection, then shows the control (or 503).
        self.pool_timeout = float(env.get("ABTEST_POOL_TIMEOUT", "2"))
        # psycopg prepares a statement on the server after it ran this many times on a
        # connection. Through PgBouncer in transaction mode (before 1.21) a prepared
        # statement lives on a server connection the next transaction may not get, and
        # every client names its statements _pg3_0, _pg3_1, ...: leave it off ("none").
        threshold = env.get("ABTEST_PREPARE_THRESHOLD", "none").strip().lower()
        self.prepare_threshold = None if threshold in ("", "none", "off") else int(threshold)
        self.host = env.get("ABTEST_HOST", "127.0.0.1")
        self.port = int(env.get("ABTEST_PORT", "8000"))
        # /debug/session shows what a pooled server connection carries (tests only).
        self.debug = env.get("ABTEST_DEBUG", "0") == "1"
        self.log_level = env.get("ABTEST_LOG_LEVEL", "INFO")


class ReasonLog:
    """Counts requests per reason (an SQLSTATE, or 'unavailable'), and logs each
    reason's first occurrence and then a count at most every 10 s: an outage must not
    flood the log."""

    def __init__(self, interval=10.0):
        self.interval = interval
        self.lock = threading.Lock()
        self.counts = {}
        self.last_logged = {}

    def add(self, reason, what, error):
        now = time.monotonic()
        with self.lock:
            count = self.counts[reason] = self.counts.get(reason, 0) + 1
            due = now - self.last_logged.get(reason, -self.interval) >= self.interval
            if due:
                self.last_logged[reason] = now
        if due:
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            log.warning("%s: %s: %s (%s; %d so far)", what, reason, message, type(error).__name__, count)

    def snapshot(self):
        with self.lock:
            return dict(self.counts)


def reason_of(error):
    """The SQLSTATE of an error the server (or PgBouncer) sent, else 'unavailable':
    no connection, a connection lost, the pool exhausted."""
    sqlstate = getattr(error, "sqlstate", None)
    return sqlstate if sqlstate else "unavailable"


def create_app(settings=None):
    settings = settings or Settings()
    app = Flask(__name__)
    fallbacks = ReasonLog()      # pages that showed the control: abtest could not be asked
    not_recorded = ReasonLog()   # outcomes that could not be recorded
    retried = {"count": 0, "lock": threading.Lock()}   # routing calls tried again on another connection

    # autocommit: a single statement is its own transaction and needs no BEGIN/COMMIT
    # round trips; several statements that belong together use conn.transaction().
    pool = ConnectionPool(
        settings.dsn, min_size=settings.pool_min, max_size=settings.pool_max,
        timeout=settings.pool_timeout, name="checkout",
        kwargs={"autocommit": True, "prepare_threshold": settings.prepare_threshold})
    admin_pool = ConnectionPool(
        settings.admin_dsn, min_size=1, max_size=2, timeout=settings.pool_timeout, name="admin",
        kwargs={"autocommit": True, "prepare_threshold": None})

    checking = threading.Lock()

    def check_pool():
        """A connection found broken usually means PgBouncer or the server restarted:
        the other idle connections are broken too. Test them all in the background
        instead of failing one request each."""
        if not checking.acquire(blocking=False):
            return

        def run():
            try:
                pool.check()
            finally:
                checking.release()
        threading.Thread(target=run, name="pool-check", daemon=True).start()

    def execute(sql, params, retry_broken):
        """Runs one statement on a pooled connection and returns its first row. A
        statement that finds its connection broken (PgBouncer restarted since it was
        last used) is tried once more on another connection when retry_broken: only
        for statements that may run twice."""
        for attempt in (1, 2):
            with pool.connection() as conn:
                try:
                    return conn.execute(sql, params).fetchone()
                except psycopg.OperationalError:
                    if not conn.closed:
                        raise
                    check_pool()
                    if not retry_broken or attempt == 2:
                        raise
                    with retried["lock"]:
                        retried["count"] += 1
                    log.info("connection found broken: routing again on another")

    def route(visitor, retry_broken=True):
        """The visitor's branch, and why it is the control when abtest could not be
        asked (None when it was). Routing a visitor twice gives the same branch (a
        sticky experiment), so it may be retried."""
        try:
            _, branch = execute(ROUTE_SQL, {"visitor": visitor, "experiment": settings.experiment},
                                retry_broken)
        except (psycopg.Error, PoolTimeout) as error:
            # An experiment archived, deleted or not started (55000, 42704), a pooler
            # or server restarting (08xxx, 57P01), no connection within the timeout:
            # the page shows the control, the visitor is not counted in the experiment.
            reason = reason_of(error)
            fallbacks.add(reason, "routing %r" % settings.experiment, error)
            return settings.control, reason
        return branch, None

    def visitor_id():
        """The visitor's id from their cookie, or a new one."""
        visitor = request.cookies.get(VISITOR_COOKIE, "")
        if VISITOR_ID.fullmatch(visitor):
            return visitor, False
        return secrets.token_urlsafe(12), True

    def page(template, visitor, new_visitor, branch, reason, status=200, **context):
        response = make_response(render_template(template, branch=branch, visitor=visitor, **context), status)
        if new_visitor:
            response.set_cookie(VISITOR_COOKIE, visitor, max_age=365 * 24 * 3600, httponly=True, samesite="Lax")
        # For the load driver and for debugging; the page shows the branch anyway.
        response.headers["X-Abtest-Branch"] = branch
        if reason:
            response.headers["X-Abtest-Degraded"] = reason
        return response

    def variant_template(branch):
        if branch in PAGES:
            return PAGES[branch]
        log.error("no page for branch %r of %r: showing the control's", branch, settings.experiment)
        return PAGES["control"]

    @app.get("/checkout")
    def checkout_page():
        visitor, new_visitor = visitor_id()
        branch, reason = route(visitor)
        return page(variant_template(branch), visitor, new_visitor, branch, reason)

    @app.post("/checkout")
    def checkout():
        started = time.monotonic()
        visitor, new_visitor = visitor_id()
        try:
            amount = Decimal(request.form.get("amount", ""))
        except InvalidOperation:
            abort(400)
        if not amount.is_finite() or amount <= 0 or amount > 100000 or amount != round(amount, 2):
            abort(400)
        card = request.form.get("card", "")

        # The same branch as the page the visitor saw (sticky); decided before the order.
        branch, reason = route(visitor)
        paid = card != DECLINED_CARD
        order_id = None
        if paid:
            # The order is the shop's business and does not depend on the experiment.
            # It is not retried: the client does not know whether a lost commit happened.
            try:
                with pool.connection() as conn, conn.transaction():
                    order_id = conn.execute(ORDER_SQL, (visitor, amount)).fetchone()[0]
            except (psycopg.Error, PoolTimeout) as error:
                log.error("order of %s not placed: %s", visitor, reason_of(error))
                if isinstance(error, psycopg.OperationalError):
                    check_pool()
                return page("unavailable.html", visitor, new_visitor, branch, reason, status=503)

        # The outcome, in the branch the visitor saw; a visitor shown the control because
        # abtest was not asked is in no branch and is not recorded. Recording counts in
        # shared memory at once (it is not undone by a rollback): it comes after the order
        # committed, as its own statement, and its failure fails nothing.
        unrecorded = reason
        if reason is None:
            latency_ms = (time.monotonic() - started) * 1000.0
            try:
                execute(RECORD_PAID_SQL if paid else RECORD_DECLINED_SQL,
                        {"experiment": settings.experiment, "branch": branch, "latency_ms": latency_ms,
                         "amount": amount},
                        retry_broken=False)
            except (psycopg.Error, PoolTimeout) as error:
                unrecorded = reason_of(error)
                not_recorded.add(unrecorded, "recording in %r" % settings.experiment, error)

        response = (page("thanks.html", visitor, new_visitor, branch, reason, order_id=order_id, amount=amount)
                    if paid else page("declined.html", visitor, new_visitor, branch, reason, status=402))
        if unrecorded:
            response.headers["X-Abtest-Not-Recorded"] = unrecorded
        return response

    @app.get("/admin")
    def admin():
        if settings.admin_token:
            if not secrets.compare_digest(request.headers.get("Authorization", ""),
                                          "Bearer " + settings.admin_token):
                abort(403)
        elif request.remote_addr not in ("127.0.0.1", "::1") or "X-Forwarded-For" in request.headers:
            abort(403)   # without a token: this machine only, not through a proxy
        experiment = request.args.get("experiment", settings.experiment)
        try:
            with admin_pool.connection() as conn:
                report = [line for (line,) in conn.execute("SELECT ab_report(%s)", (experiment,))]
                srm = conn.execute("SELECT chi_square, p_value, mismatch FROM ab_srm(%s)", (experiment,)).fetchone()
        except psycopg.errors.UndefinedObject:
            abort(404)
        except (psycopg.Error, PoolTimeout) as error:
            log.error("admin page: %s: %s", reason_of(error), error)
            return Response("the report is not available (%s)\n" % reason_of(error), status=503,
                            mimetype="text/plain")
        return render_template("admin.html", experiment=experiment, report=report, srm=srm,
                               fallbacks=fallbacks.snapshot())

    @app.get("/healthz")
    def healthz():
        """200 when a pooled connection answers, 503 otherwise; with what went wrong since
        the process started."""
        body = {"fallbacks": fallbacks.snapshot(), "not_recorded": not_recorded.snapshot(),
                "retried": retried["count"], "pool": pool.get_stats()}
        try:
            with pool.connection() as conn:
                conn.execute("SELECT 1")
            body["database"] = "ok"
            status = 200
        except (psycopg.Error, PoolTimeout) as error:
            body["database"] = reason_of(error)
            status = 503
        return Response(json.dumps(body), status=status, mimetype="application/json")

    if settings.debug:
        @app.get("/debug/session")
        def debug_session():
            """What the server connection this request got carries from earlier
            transactions of any client: a transaction-local setting must be gone, and
            with preparing off no prepared statement may exist."""
            with pool.connection() as conn:
                inherited, server_pid, prepared = conn.execute(
                    "SELECT current_setting('app.visitor', true), pg_backend_pid(),"
                    " ARRAY(SELECT name FROM pg_prepared_statements ORDER BY name)").fetchone()
                client_key = conn.pgconn.backend_pid   # PgBouncer's id of this client connection
            return {"inherited_visitor": inherited or "", "server_pid": server_pid,
                    "client_key": client_key, "prepared": prepared}

    return app


def main():
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)   # no line per request
    app = create_app(settings)
    log.info("checkout on %s:%d, experiment %r, prepare_threshold %s", settings.host, settings.port,
             settings.experiment, settings.prepare_threshold)
    # Keep-alive connections: each client keeps its thread. Werkzeug's server is enough
    # for the example and the test; in production run create_app() under a WSGI server
    # (gunicorn, uWSGI), one pool per worker process, created after the fork.
    WSGIRequestHandler.protocol_version = "HTTP/1.1"
    app.run(host=settings.host, port=settings.port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
