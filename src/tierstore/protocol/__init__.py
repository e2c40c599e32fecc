"""The checkpoint protocol: how checkpoints are written while other processes delete, move and collect artifacts,
without a listed checkpoint ever naming an artifact that is gone, damaged or in another tier than it says.

Used by the bridge (checkpoints, ``delete_checkpoint``, ``delete_page``, ``set_tier``), by maintenance (``fsck``,
``gc``) and by the chuk integration, so that every deletion goes through one protocol. The pieces:

* :mod:`.records` - the records writer and deleter share: :class:`Lease`, :class:`Tomb` (and what tombs say,
  :class:`Doomed`);
* :mod:`.writer` - the writer, steps W0-W4 (:func:`write_checkpoint`), with :mod:`.reuse` (what it may reuse, and
  the proof that it may) and :mod:`.keeper` (its lease, renewed while it runs);
* :mod:`.reader` - a checkpoint restored whole and verified, or an error (:func:`read_checkpoint`);
* :mod:`.references` - the records read from a store, the store's time, and the deleter's side: ``sweep`` (D1-D4),
  ``delete_recorded`` and ``retier`` (M1-M4); :mod:`.manifests` - manifests, read once each.
* :mod:`.erasure` - a whole scope erased (``delete_user``, ``delete_session``), steps E1-E5 (imported on use: it
  views the store through :mod:`tierstore.artifacts.scoped`).

Records (frames of kind ``record``, see :mod:`tierstore.codec`):

* ``intent_{checkpoint}`` - the lease of a checkpoint in progress: the artifacts it reuses, and when it was last
  renewed. A running checkpoint renews it every ``ttl / 4`` (its event loop's monotonic clock); once ``ttl``
  passes without renewal (the writer crashed), in the store's time, it protects nothing any more. Artifacts
  written for a checkpoint carry its id (object metadata ``ckpt``), so a live lease protects them too, however
  long the checkpoint runs.
* ``tomb_{time}_{random}_p`` / ``_d`` / ``_m`` / ``_e`` - artifacts about to be deleted (pending) / deleted / being
  moved to another tier / the whole scope being erased (naming nothing). Kept until ``gc`` prunes them after its
  tomb retention (a ``moving`` one too, once its move was sent: see ``References.retier``), an erasing one until its
  erasure ends.
* ``ckpt_{time}_{random}`` - a manifest, written last, create-if-absent: a listed checkpoint is a complete one.

The order that makes this safe. A writer: (W0) writes its lease naming the artifacts it may reuse, proves them (below)
and uploads anew every page whose artifact it cannot prove, uploads its new artifacts, (W1) renews the lease, (W2)
lists tombs and uploads again any of its artifacts they name, (W3) writes the manifest, (W4) deletes the lease. A
deleter (:meth:`.references.References.sweep`): (D1) writes a pending tomb naming its candidates, (D2) lists leases,
(D3) lists manifests, (D4) writes a deleted tomb and deletes the candidates that no live lease and no manifest
protects. If D1 came before W2, the writer sees the tomb and does not use those artifacts. If D1 came after W2, then
D2 came after W1, so D2 sees the lease (live, as W3 finishes well within ``ttl`` of W1: the writer sends W3 only while
less than ``ttl / 2`` has passed since it sent W1, by its monotonic clock, and else does W1 and W2 again), or, once W4
is done, D3 sees the manifest. Either way no listed checkpoint loses an artifact. ("Sees the tomb": a sweep deletes its
pending tomb once its deleted tomb is written, so one W2 listed may be gone when read; W2 then lists the tombs
again and finds the deleted one, :meth:`.references.References.tombs`.) The same holds for artifacts a
checkpoint uploaded itself: a deleter only takes them while the lease naming their checkpoint is not live, and W2 then
finds the tomb. (``delete_page`` writes its tomb and deletes, checking nothing: if its tomb comes after W2, it deletes
a page of a listed checkpoint, as it may.)

Time. Hosts' wall clocks disagree, step back and jump ahead, so no decision here compares one host's clock with
another's or with the store's. An age is the store's own time (a record written now, as
:meth:`.references.References.store_time` reads it: the deleter's pending tomb, or ``gc``'s probe) minus an object's
last-modified time as the backend reports it (set by the server: S3 ``LastModified``, GCS ``updated``, Azure
``Last-Modified``, a file's mtime from the kernel, the in-memory store's own clock), to within the store's resolution
(a second on S3 and Azure). A lease is live until ``ttl`` after its last write in that time, whatever time its writer
put inside it; orphans, strays and tombs age the same way. Where no record can be written (a full store) or for
read-only callers, the store's time is estimated as the newest last-modified time listed, never past this host's
clock: an earlier estimate only keeps more. A host's clock (:mod:`tierstore.clock`) names records and checkpoints, and
says nothing about what may be deleted; the writer's renewal period is measured with its monotonic clock.

Reuse never trusts a reference (an entry of a listed manifest, or of a checkpoint this process made or restored):
tombs tell only of deletions under way or recent, and nothing tells of damage, removal by hand or a tier change. So
after W0 the writer *proves* each artifact it would reuse (:meth:`.reuse.Reuse.prove`): one ``head`` shows it there,
not archived, in the entry's tier, of the entry's size, with its checksum (unique to one write), and with the version
token (``ObjectInfo.version``: ETag, generation, on disk inode and change time) recorded when it was last verified;
without that token (none recorded, none given, or another) the artifact is read whole and its frame verified against
the checksum, and the new manifest records the token of that ``head``. What fails is uploaded anew. A deletion that
finished before the proof fails it, whether or not ``gc`` has pruned its tomb since. One that had not yet deleted the
artifact wrote its tomb first (D1): W2 finds it, or D2 came after W1 and sees the lease that names the artifact (W0
came before the proof), as above. That holds while W0 to W2 takes less than the tomb retention of ``gc`` (7 days). A
tier change (``set_tier``) is ordered like a deletion (:meth:`.references.References.retier`, steps M1-M4): a
``moving`` tomb first, then the leases, and it refuses (InUseError) an artifact that a live lease names or whose
checkpoint runs; so one that lands after the proof makes the writer upload anew (W2 sees its tomb) or is refused.
Damage after the proof goes through no protocol, like damage after the manifest is written: ``fsck`` and
``restore_checkpoint`` report it. A tier change by another program (a lifecycle rule) is such damage.

A record that cannot be read (bytes that are no frame, another record's frame; on disk a directory, FIFO, socket or
link at its key) protects everything it could: an unreadable lease counts as live and protecting every artifact until
:data:`.records.UNREADABLE_LEASE_TTL` after its last write, when ``gc`` deletes it as any expired lease; an unreadable
tomb makes every checkpoint upload anew what it would reuse, until ``gc`` prunes it after the tomb retention; an
unreadable manifest stops every sweep. Nothing stops on one: ``fsck`` names it by its key (tests/test_odd_records.py).
Entries a caller keeps stored under a lease of its own (``checkpoint(stored=...)``, a chuk agent's evicted pages)
cannot be uploaded anew, and an unreadable tomb does not refuse them: every deleter writes its tomb whole (one
create-if-absent put, atomic on every backend) before it deletes, so a tomb that cannot be read is damage or some
other program's, and stands for no deletion under way. A deletion of a kept entry that is real is caught anyway: one
that finished before the writer's head of the entry (:meth:`.reuse.Reuse.present`, after W0) fails that head; one
under way wrote a readable tomb first, so W2 names it (the checkpoint then fails, naming the page), or its tomb came
after W2 and it deletes a page of a listed checkpoint, as ``delete_page`` may; a sweep never takes it, as the lease
names it. What the writer uploads itself it still uploads anew, as above, since that costs only time.

Erasure (:mod:`.erasure`, argued there) deletes a whole scope and then its own tomb, so unlike every other deletion
it leaves no tomb for a later W2 to find. It is ordered against writers instead: (E1) an *erasing* tomb first, which
fails every checkpoint whose W2 sees it (:class:`~tierstore.errors.ScopeErasingError`, nothing listed); (E2) every
live lease of the scope waited for until it is deleted or expired, so a checkpoint whose W2 came before E1 has
written its manifest (deleted with the rest in E3) or never will; (E3) everything deleted, manifests first, listing
until nothing is left, a live lease listed waited for first; (E4) one settle period for stores in flight, and E3
again; (E5) the tomb, then the registry records. A writer paused so long that its lease expired meanwhile may resume
after E5 and find no tomb at W2; its lease then went ``ttl / 2`` or more without a write at some point since W0
(``LeaseKeeper.stalled``), and such a writer shows every artifact its manifest names present after W3 (``_fence``
of :mod:`.writer`), deleting the manifest and failing when one is gone.

On a full store (:class:`~tierstore.errors.StorageFullError`) a deletion cannot write its tomb first; it then
deletes first and writes the tomb after, so that deleting still frees space. In that narrow case a checkpoint
reusing the very artifact being deleted at that moment could list it; ``fsck`` reports it as missing.
"""

from tierstore.protocol.keeper import LeaseKeeper
from tierstore.protocol.manifests import Manifests
from tierstore.protocol.reader import read_checkpoint
from tierstore.protocol.records import (
    DEFAULT_LEASE_TTL,
    UNREADABLE_LEASE_TTL,
    Doomed,
    Lease,
    Tomb,
    TombState,
    as_utc,
)
from tierstore.protocol.references import References
from tierstore.protocol.reuse import REUSE_FROM_NEWEST, Reuse
from tierstore.protocol.writer import Guard, Plan, Written, new_entry, with_state, write_checkpoint

__all__ = [
    "DEFAULT_LEASE_TTL",
    "REUSE_FROM_NEWEST",
    "UNREADABLE_LEASE_TTL",
    "Doomed",
    "Guard",
    "Lease",
    "LeaseKeeper",
    "Manifests",
    "Plan",
    "References",
    "Reuse",
    "Tomb",
    "TombState",
    "Written",
    "as_utc",
    "new_entry",
    "read_checkpoint",
    "with_state",
    "write_checkpoint",
]
