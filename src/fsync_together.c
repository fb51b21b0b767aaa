/*
 * fsync_together.c
 *	  Many fsyncs in flight at once, through io_uring.
 *
 * Each fsync() of a new file or directory ends with a flush of the device's
 * write cache, and one process's fsync() calls flush one after the other.
 * Submitted together, the block layer merges the flushes of those in flight:
 * a group's paths became durable 2.5 times faster on the development machine
 * (see doc/development.md).  This is an optimisation only: whatever it does
 * not fsync (io_uring unavailable, a path it cannot open, an interrupt
 * pending) is left to the caller's own fsync, and every result it does get
 * is kept, good or bad, since an fsync() that saw a write-back error reports
 * it to no descriptor opened afterwards.
 */
#include "postgres.h"

#include <fcntl.h>
#include <liburing.h>

#include "miscadmin.h"
#include "storage/fd.h"

#include "interactions_cron/fsync_together.h"

/*
 * How many fsyncs are in flight at once.  Eight already took most of the
 * gain on the development machine; each holds a descriptor.
 */
#define FSYNCS_IN_FLIGHT 32

/*
 * One fsync in flight: its descriptor, its path, and the submission's
 * user_data, the path's index above the descriptor: unique within a pass,
 * so that a completion is never taken for another path's whose descriptor
 * got the same number (test/t/047_fsync_together_reused_descriptors.pl),
 * with the descriptor in the low 32 bits for the tests' failure shim.
 */
typedef struct FsyncInFlight
{
	int			descriptor;		/* -1: slot free */
	PathToSync *path;
	uint64		tag;
} FsyncInFlight;

/*
 * RingSupportsFsync says whether the kernel behind a ring says it has the
 * fsync operation (from Linux 5.6, which answers the probe; a sandbox that
 * emulates io_uring may not have it).  Without the answer a directory's
 * fsync refused as unknown (EINVAL) would pass for one that cannot be
 * fsynced, which counts as durable.
 */
static bool
RingSupportsFsync(struct io_uring *ring)
{
	struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
	bool		supported = probe != NULL && io_uring_opcode_supported(probe, IORING_OP_FSYNC);

	if (probe != NULL)
		io_uring_free_probe(probe);
	return supported;
}

/*
 * OpenRing sets up an io_uring instance, or says why not at DEBUG1 and
 * returns false (a kernel without io_uring or its fsync, io_uring_disabled,
 * a seccomp filter, no descriptor to spare).
 */
static bool
OpenRing(struct io_uring *ring)
{
	int			result;

	if (!AcquireExternalFD())
		return false;
	result = io_uring_queue_init(FSYNCS_IN_FLIGHT, ring, 0);
	if (result < 0)
	{
		ReleaseExternalFD();
		elog(DEBUG1, "interactions_cron: fsyncs one at a time, io_uring is unavailable: %s",
			 strerror(-result));
		return false;
	}
	if (!RingSupportsFsync(ring))
	{
		io_uring_queue_exit(ring);
		ReleaseExternalFD();
		elog(DEBUG1, "interactions_cron: fsyncs one at a time, io_uring is unavailable: it has no fsync");
		return false;
	}
	return true;
}

/* What became of a path SubmitFsync was given. */
typedef enum SubmitOutcome
{
	FSYNC_SUBMITTED,
	FSYNC_NOT_OPENED,			/* left to the caller; go on with the next */
	FSYNC_NO_DESCRIPTOR,		/* none to spare until one in flight is done */
	FSYNC_REFUSED,				/* the kernel refused it: submit nothing more */
} SubmitOutcome;

/*
 * SubmitFsync opens a path and submits its fsync into a free slot.  The
 * descriptors are external ones (AcquireExternalFD), which run out without
 * an ERROR.  A submission the kernel refused stays in the ring unsubmitted
 * for good: FsyncTogether submits nothing after it.
 */
static SubmitOutcome
SubmitFsync(struct io_uring *ring, FsyncInFlight *slot, PathToSync *paths, int index)
{
	PathToSync *path = &paths[index];
	uint64		tag;
	struct io_uring_sqe *submission;
	int			descriptor;

	if (!AcquireExternalFD())
		return FSYNC_NO_DESCRIPTOR;
	descriptor = open(path->path, (path->isDirectory ? O_RDONLY : O_RDWR) | O_CLOEXEC | PG_BINARY);
	if (descriptor < 0)
	{
		ReleaseExternalFD();
		return FSYNC_NOT_OPENED;
	}
	submission = io_uring_get_sqe(ring);
	if (submission != NULL)
	{
		tag = ((uint64) index << 32) | (uint32) descriptor;
		io_uring_prep_fsync(submission, descriptor, 0);
		io_uring_sqe_set_data64(submission, tag);
		if (io_uring_submit(ring) == 1)
		{
			slot->descriptor = descriptor;
			slot->path = path;
			slot->tag = tag;
			return FSYNC_SUBMITTED;
		}
	}
	close(descriptor);
	ReleaseExternalFD();
	return FSYNC_REFUSED;
}

/*
 * FinishFsync records how a path's fsync ended (0 or an errno) and frees
 * its slot.
 */
static void
FinishFsync(FsyncInFlight *slot, int syncErrno)
{
	slot->path->synced = true;
	slot->path->syncErrno = syncErrno;
	close(slot->descriptor);
	ReleaseExternalFD();
	slot->descriptor = -1;
}

/*
 * SlotOf finds the slot of the fsync a completion's user_data names, or NULL.
 */
static FsyncInFlight *
SlotOf(FsyncInFlight *slots, uint64 tag)
{
	for (int i = 0; i < FSYNCS_IN_FLIGHT; i++)
	{
		if (slots[i].descriptor >= 0 && slots[i].tag == tag)
			return &slots[i];
	}
	return NULL;
}

/*
 * FreeSlot returns a slot with no fsync in flight, or NULL.
 */
static FsyncInFlight *
FreeSlot(FsyncInFlight *slots)
{
	for (int i = 0; i < FSYNCS_IN_FLIGHT; i++)
	{
		if (slots[i].descriptor < 0)
			return &slots[i];
	}
	return NULL;
}

/*
 * AbandonFsyncs records every fsync in flight as failed with error, once
 * their results can no longer be read: the batches they cover are undone
 * and written again, where a result never read could hide a write-back
 * error for good.  Their descriptors stay open until the ring is gone
 * (FsyncTogether), so that no later open() takes a number that a completion
 * still in the ring names.
 */
static void
AbandonFsyncs(FsyncInFlight *slots, int error)
{
	for (int i = 0; i < FSYNCS_IN_FLIGHT; i++)
	{
		if (slots[i].descriptor >= 0)
		{
			slots[i].path->synced = true;
			slots[i].path->syncErrno = error;
		}
	}
}

/*
 * AwaitFsync waits for one fsync in flight to complete and records it, or,
 * when waiting fails or a completion names no fsync in flight, abandons
 * them all (AbandonFsyncs) and returns false.  The wait goes through
 * io_uring_wait_cqe_timeout(), a function of the library, so that the
 * tests' failure shim (test/fsync_fail) sees every completion.
 */
static bool
AwaitFsync(struct io_uring *ring, FsyncInFlight *slots)
{
	struct io_uring_cqe *completion;
	FsyncInFlight *slot;
	int			result;

	do
		result = io_uring_wait_cqe_timeout(ring, &completion, NULL);
	while (result == -EINTR || result == -EAGAIN);
	if (result < 0)
	{
		AbandonFsyncs(slots, -result);
		return false;
	}
	slot = SlotOf(slots, io_uring_cqe_get_data64(completion));
	result = completion->res;
	io_uring_cqe_seen(ring, completion);
	if (slot == NULL)
	{
		AbandonFsyncs(slots, EIO);
		return false;
	}
	/* as fsync_fname_ext(): a directory that cannot be fsynced is no failure */
	if (slot->path->isDirectory && (result == -EBADF || result == -EINVAL))
		result = 0;
	FinishFsync(slot, -result);
	return true;
}

/*
 * FsyncTogether fsyncs paths with up to FSYNCS_IN_FLIGHT in flight, marking
 * each one it fsynced with the result.  It stops submitting when an
 * interrupt is pending (the caller's own fsyncs, between which interrupts
 * are served, take over), and waits only for those in flight, as a blocking
 * fsync() would; after a failed wait, it submits nothing more.  Nothing is
 * fsynced with fsync off.
 */
void
FsyncTogether(PathToSync *paths, int count)
{
	struct io_uring ring;
	FsyncInFlight slots[FSYNCS_IN_FLIGHT];
	int			inFlight = 0;
	int			next = 0;
	bool		refused = false;

	if (!enableFsync || count == 0 || !OpenRing(&ring))
		return;
	for (int i = 0; i < FSYNCS_IN_FLIGHT; i++)
		slots[i].descriptor = -1;
	for (;;)
	{
		FsyncInFlight *slot;

		while (!refused && next < count && !InterruptPending && (slot = FreeSlot(slots)) != NULL)
		{
			SubmitOutcome outcome = SubmitFsync(&ring, slot, paths, next);

			if (outcome == FSYNC_NO_DESCRIPTOR)
				break;
			refused = outcome == FSYNC_REFUSED;
			inFlight += outcome == FSYNC_SUBMITTED;
			next++;
		}
		if (inFlight == 0 || !AwaitFsync(&ring, slots))
			break;
		inFlight--;
	}
	io_uring_queue_exit(&ring);
	for (int i = 0; i < FSYNCS_IN_FLIGHT; i++)
	{
		if (slots[i].descriptor >= 0)
		{
			close(slots[i].descriptor);
			ReleaseExternalFD();
		}
	}
	ReleaseExternalFD();
}
