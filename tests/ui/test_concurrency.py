"""Concurrent Next and double submits: real threads, separate connections, on both databases.

On PostgreSQL the queue's row locks (SELECT … FOR UPDATE SKIP LOCKED, then the count in a new
statement) are under test; on SQLite (the test database is a file, in WAL mode, and
transactions begin IMMEDIATE) the same statements with writers taking turns."""

import re
import threading
from collections import Counter

from django.db import connection
from django.test import Client

from preferences.models import Assignment, Judgement

from .factories import all_facets, make_pair


def run_together(n, fn):
    """Run fn(i) in n threads released at once; each thread closes its own DB connection."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def worker(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


def test_raters_pressing_next_together_never_exceed_overlap(transactional_db, project, member):
    project.overlap = 2
    project.save()
    pairs = [make_pair(project=project) for _ in range(3)]
    clients = []
    for i in range(10):
        client = Client()
        client.force_login(member(f"r{i}"))
        client.get(f"/projects/{project.id}/rate/")
        clients.append(client)

    def press_next(i):
        body = clients[i].get(f"/projects/{project.id}/rate/next/").content.decode()
        match = re.search(r"/rate/items/(\d+)/submit/", body)
        return int(match.group(1)) if match else None

    served = [a for a in run_together(len(clients), press_next) if a]
    per_pair = Counter(Assignment.objects.filter(pk__in=served).values_list("pair_id", flat=True))
    assert len(served) == 6  # 3 pairs × overlap 2: every slot filled, none twice
    assert per_pair == {p.id: 2 for p in pairs}
    assert Assignment.objects.count() == 6


def test_double_submitted_form_records_one_judgement_per_facet(transactional_db, project, member):
    make_pair(project=project)
    rater = member("r1")
    client = Client()
    client.force_login(rater)
    client.get(f"/projects/{project.id}/rate/")
    body = client.get(f"/projects/{project.id}/rate/next/").content.decode()
    aid = int(re.search(r"/rate/items/(\d+)/submit/", body).group(1))
    clients = []
    for _ in range(4):
        c = Client()
        c.force_login(rater)
        clients.append(c)

    statuses = run_together(
        4,
        lambda i: (
            clients[i].post(f"/rate/items/{aid}/submit/", all_facets(project, "B")).status_code
        ),
    )
    assert statuses == [302] * 4
    assert Judgement.objects.count() == project.facets.count()
    assert Assignment.objects.get(pk=aid).status == "done"
