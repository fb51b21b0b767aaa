/*
 * fsync_fail.c
 *	  LD_PRELOAD shim for the TAP tests: fsync(), fdatasync() and syncfs() of
 *	  any file descriptor whose path contains the substring in the environment
 *	  variable FSYNC_FAIL_MATCH (or ends with it, when it ends with "$") fail
 *	  with EIO, as a failing disk would report, and so do the fsyncs
 *	  interactions_cron submits through io_uring (src/fsync_together.c, whose
 *	  submissions carry their descriptor in user_data's low 32 bits): their completions
 *	  say -EIO when liburing's io_uring_wait_cqe_timeout() hands them over.
 *	  With FSYNC_FAIL_NO_IO_URING set, io_uring_queue_init() fails with
 *	  ENOSYS, as on a kernel without io_uring; with FSYNC_FAIL_NO_PROBE,
 *	  io_uring_get_probe_ring() finds nothing, as before Linux 5.6.  statfs() of a path that
 *	  contains FSYNC_FAIL_FUSE_MATCH says it is on FUSE.
 *	  With FSYNC_FAIL_ONCE set, only the first matching sync of each process
 *	  fails (a disk whose write-back error is reported once: a second fsync()
 *	  of the path succeeds).
 *	  Every other call goes through to the real function.
 *
 *	  Build: cc -shared -fPIC -o fsync_fail.so fsync_fail.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/statfs.h>
#include <linux/io_uring.h>
#include <linux/magic.h>

typedef int (*sync_function) (int);

/*
 * PathMatches says whether path contains match or, when match ends with "$",
 * ends with the rest of it.
 */
static int
PathMatches(const char *path, const char *match)
{
	size_t		pathLength = strlen(path);
	size_t		matchLength = strlen(match);

	if (match[matchLength - 1] != '$')
		return strstr(path, match) != NULL;
	matchLength--;
	return pathLength >= matchLength &&
		strncmp(path + pathLength - matchLength, match, matchLength) == 0;
}

/*
 * MatchesFailingPath says whether fd's path (as /proc/self/fd shows it)
 * matches FSYNC_FAIL_MATCH (PathMatches).
 */
static int
MatchesFailingPath(int fd)
{
	const char *match = getenv("FSYNC_FAIL_MATCH");
	char		link[64];
	char		path[4096];
	ssize_t		length;
	int			savedErrno = errno;

	if (match == NULL || match[0] == '\0')
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	length = readlink(link, path, sizeof(path) - 1);
	errno = savedErrno;
	if (length < 0)
		return 0;
	path[length] = '\0';
	return PathMatches(path, match);
}

/*
 * FailNow says whether a matching sync fails: always, or with
 * FSYNC_FAIL_ONCE only the first one in this process.
 */
static int
FailNow(void)
{
	static int	failedOnce = 0;
	const char *once = getenv("FSYNC_FAIL_ONCE");

	if (once == NULL || once[0] == '\0')
		return 1;
	if (failedOnce)
		return 0;
	failedOnce = 1;
	return 1;
}

/*
 * RealFunction looks up the next definition of name (libc's or liburing's).
 */
static void *
RealFunction(const char *name)
{
	void	   *function = dlsym(RTLD_NEXT, name);

	if (function == NULL)
	{
		fprintf(stderr, "fsync_fail: dlsym(%s) failed: %s\n", name, dlerror());
		abort();
	}
	return function;
}

/*
 * SyncUnlessFailing fails a sync of fd with EIO when its path matches, and
 * otherwise calls the real function name, looked up once into *real.
 */
static int
SyncUnlessFailing(int fd, const char *name, sync_function *real)
{
	if (MatchesFailingPath(fd) && FailNow())
	{
		errno = EIO;
		return -1;
	}
	if (*real == NULL)
		*real = (sync_function) RealFunction(name);
	return (*real) (fd);
}

int
fsync(int fd)
{
	static sync_function real = NULL;

	return SyncUnlessFailing(fd, "fsync", &real);
}

int
fdatasync(int fd)
{
	static sync_function real = NULL;

	return SyncUnlessFailing(fd, "fdatasync", &real);
}

int
syncfs(int fd)
{
	static sync_function real = NULL;

	return SyncUnlessFailing(fd, "syncfs", &real);
}

struct io_uring;
typedef int (*init_function) (unsigned, struct io_uring *, unsigned);
typedef void *(*probe_function) (struct io_uring *);
typedef int (*wait_function) (struct io_uring *, struct io_uring_cqe **,
							  struct __kernel_timespec *);

int
io_uring_wait_cqe_timeout(struct io_uring *ring, struct io_uring_cqe **completion,
						  struct __kernel_timespec *timeout)
{
	static wait_function real = NULL;
	int			result;

	if (real == NULL)
		real = (wait_function) RealFunction("io_uring_wait_cqe_timeout");
	result = real(ring, completion, timeout);
	if (result == 0 && (*completion)->res == 0 &&
		MatchesFailingPath((int) (*completion)->user_data) && FailNow())
		(*completion)->res = -EIO;
	return result;
}

int
io_uring_queue_init(unsigned entries, struct io_uring *ring, unsigned flags)
{
	static init_function real = NULL;
	const char *disabled = getenv("FSYNC_FAIL_NO_IO_URING");

	if (disabled != NULL && disabled[0] != '\0')
		return -ENOSYS;
	if (real == NULL)
		real = (init_function) RealFunction("io_uring_queue_init");
	return real(entries, ring, flags);
}

void *
io_uring_get_probe_ring(struct io_uring *ring)
{
	static probe_function real = NULL;
	const char *disabled = getenv("FSYNC_FAIL_NO_PROBE");

	if (disabled != NULL && disabled[0] != '\0')
		return NULL;
	if (real == NULL)
		real = (probe_function) RealFunction("io_uring_get_probe_ring");
	return real(ring);
}

typedef int (*statfs_function) (const char *, struct statfs *);

int
statfs(const char *path, struct statfs *fileSystem)
{
	static statfs_function real = NULL;
	const char *match = getenv("FSYNC_FAIL_FUSE_MATCH");
	int			result;

	if (real == NULL)
		real = (statfs_function) RealFunction("statfs");
	result = real(path, fileSystem);
	if (result == 0 && match != NULL && match[0] != '\0' && strstr(path, match) != NULL)
		fileSystem->f_type = FUSE_SUPER_MAGIC;
	return result;
}
