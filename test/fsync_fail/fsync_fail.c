/*
 * fsync_fail.c
 *	  LD_PRELOAD shim for the TAP tests: fsync(), fdatasync() and syncfs() of
 *	  any file descriptor whose path contains the substring in the environment
 *	  variable FSYNC_FAIL_MATCH (or ends with it, when it ends with "$") fail
 *	  with EIO, as a failing disk would report.
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
 * RealFunction looks up the next definition of name (libc's).
 */
static sync_function
RealFunction(const char *name)
{
	sync_function function = (sync_function) dlsym(RTLD_NEXT, name);

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
	if (MatchesFailingPath(fd))
	{
		errno = EIO;
		return -1;
	}
	if (*real == NULL)
		*real = RealFunction(name);
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
