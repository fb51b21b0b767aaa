/*
 * reused_descriptors.c
 *	  A check of src/fsync_together.c outside the server (t/047 builds and
 *	  runs it): when a wait for a completion fails, the fsyncs in flight are
 *	  abandoned as failed, and no later path may take their completions for
 *	  its own, although open() gives it a descriptor number one of them had.
 *	  Before, submissions were named by their descriptor alone, and the
 *	  abandoned descriptors were closed at once: a later path whose own
 *	  fsync failed was recorded durable (the tenth hostile review's
 *	  reproduction, which failed on a2e6b02).
 *
 * It links the real src/fsync_together.c with stubs of the server symbols
 * it uses, and wraps io_uring_wait_cqe_timeout() to fail once (-ENOMEM)
 * after the 32 first completions have arrived.  64 paths: 63 regular files
 * and, at index 40, a FIFO, whose fsync the kernel fails (EINVAL).
 *
 *   control:  no injected failure: the FIFO is recorded failed.
 *   injected: the FIFO is recorded failed, or left to the caller.
 *
 * Exit status 1 when either case records the FIFO as durable.
 */
#include "postgres.h"

#include <dlfcn.h>
#include <liburing.h>
#include <sys/stat.h>

#include "miscadmin.h"
#include "storage/fd.h"

#include "interactions_cron/fsync_together.h"

/* libc's, not libpgport's */
#undef printf
#undef fprintf
#undef snprintf

/* Stubs of what fsync_together.c takes from the server. */
bool		enableFsync = true;
volatile sig_atomic_t InterruptPending = false;
bool
AcquireExternalFD(void)
{
	return true;
}
void
ReleaseExternalFD(void)
{
}
bool
errstart(int elevel, const char *domain)
{
	return false;
}
void
errfinish(const char *filename, int lineno, const char *funcname)
{
}
int
errmsg_internal(const char *fmt,...)
{
	return 0;
}
char *
pg_strerror(int errnum)
{
	return "";
}

static int	injectOnce = 0;

typedef int (*wait_function) (struct io_uring *, struct io_uring_cqe **,
							  struct __kernel_timespec *);

int
io_uring_wait_cqe_timeout(struct io_uring *ring, struct io_uring_cqe **completion,
						  struct __kernel_timespec *timeout)
{
	static wait_function real = NULL;

	if (real == NULL)
		real = (wait_function) dlsym(RTLD_NEXT, "io_uring_wait_cqe_timeout");
	if (injectOnce)
	{
		/* let the 32 first fsyncs complete, unread, then fail this wait */
		for (int i = 0; i < 5000 && io_uring_cq_ready(ring) < 32; i++)
			usleep(1000);
		fprintf(stderr, "  (wait fails with ENOMEM; %u completions unread in the ring)\n",
				io_uring_cq_ready(ring));
		injectOnce = 0;
		return -ENOMEM;
	}
	return real(ring, completion, timeout);
}

#define COUNT 64
#define FIFO_INDEX 40

static int
RunCase(const char *label, int inject)
{
	char		directory[] = "/tmp/fsync_together_XXXXXX";
	char	   *names[COUNT];
	PathToSync paths[COUNT];

	if (mkdtemp(directory) == NULL)
		abort();
	for (int i = 0; i < COUNT; i++)
	{
		names[i] = malloc(256);
		snprintf(names[i], 256, "%s/%s%02d", directory, i == FIFO_INDEX ? "fifo" : "file", i);
		if (i == FIFO_INDEX)
		{
			if (mkfifo(names[i], 0600) != 0)
				abort();
		}
		else
		{
			int			fd = open(names[i], O_CREAT | O_WRONLY, 0600);

			if (fd < 0 || write(fd, "x", 1) != 1)
				abort();
			close(fd);
		}
		paths[i] = (PathToSync) {names[i], false, false, 0};
	}
	injectOnce = inject;
	FsyncTogether(paths, COUNT);
	printf("%s: fifo (index %d): synced=%d syncErrno=%d (%s)\n", label, FIFO_INDEX,
		   paths[FIFO_INDEX].synced, paths[FIFO_INDEX].syncErrno,
		   !paths[FIFO_INDEX].synced ? "left to the caller"
		   : paths[FIFO_INDEX].syncErrno == 0 ? "RECORDED DURABLE" : "recorded failed");
	{
		int			durable = 0, failed = 0, left = 0;

		for (int i = 0; i < COUNT; i++)
		{
			if (!paths[i].synced)
				left++;
			else if (paths[i].syncErrno == 0)
				durable++;
			else
				failed++;
		}
		printf("%s: %d recorded durable, %d recorded failed, %d left to the caller\n",
			   label, durable, failed, left);
	}
	for (int i = 0; i < COUNT; i++)
		unlink(names[i]);
	rmdir(directory);
	return paths[FIFO_INDEX].synced && paths[FIFO_INDEX].syncErrno == 0;
}

int
main(void)
{
	int			controlWrong = RunCase("control ", 0);
	int			injectedWrong = RunCase("injected", 1);

	if (controlWrong)
		printf("control case wrong: the harness does not work here\n");
	if (injectedWrong)
		printf("FAIL: after a failed wait, a failed fsync was recorded as durable (descriptor reused)\n");
	else
		printf("ok\n");
	return injectedWrong || controlWrong;
}
