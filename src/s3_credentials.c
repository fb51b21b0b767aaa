/*
 * s3_credentials.c
 *	  Where the S3 credentials of a run come from.
 *
 * One source supplies the key id, the secret and the session token together,
 * so that a key of one source is never signed with the secret of another;
 * the first source that holds credentials is used:
 *
 *	1. the settings interactions_cron.s3_access_key_id and
 *	   s3_secret_access_key (from postgresql.conf or ALTER SYSTEM only, see
 *	   CheckCredential in guc.c; they carry no session token);
 *	2. the AWS shared credentials file interactions_cron.s3_credentials_file,
 *	   profile interactions_cron.s3_credentials_profile;
 *	3. the server's environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 *	   AWS_SESSION_TOKEN.
 *
 * The settings and the file are explicit choices of a superuser, so they
 * come before whatever environment the service manager gave the server.
 * Secrets never appear in a message: errors name the setting, the file, the
 * profile or a line number, never a line's contents.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/stringinfo.h"
#include "storage/fd.h"

#include "interactions_cron/guc.h"
#include "interactions_cron/s3_credentials.h"

/* A credentials file larger than this is not one. */
#define MAX_CREDENTIALS_FILE_BYTES (64 * 1024)

/* The credentials found in one profile of a credentials file. */
typedef struct ProfileCredentials
{
	char	   *accessKeyId;
	char	   *secretAccessKey;
	char	   *sessionToken;
} ProfileCredentials;

/*
 * IsSet says whether a setting or an environment variable holds a value.
 */
static bool
IsSet(const char *value)
{
	return value != NULL && value[0] != '\0';
}

/*
 * RequireSafeCredentialSettings refuses credentials given as settings unless
 * the library is preloaded: in a session that has not loaded it, a value set
 * in postgresql.conf is a plain placeholder that every role can SHOW.
 */
static void
RequireSafeCredentialSettings(void)
{
	if (!LoadedAtServerStart)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("S3 credentials in settings require interactions_cron in shared_preload_libraries"),
				 errdetail("Sessions that have not loaded the library see interactions_cron.s3_secret_access_key as a placeholder that every role can read."),
				 errhint("Add interactions_cron to shared_preload_libraries and restart, or use interactions_cron.s3_credentials_file "
						 "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the server's environment.")));
}

/*
 * CredentialsFromSettings takes both credential settings, or neither: one
 * without the other is a mistake, not a reason to look elsewhere.
 */
static bool
CredentialsFromSettings(S3Target *target)
{
	bool		idSet = IsSet(S3AccessKeyIdSetting);
	bool		secretSet = IsSet(S3SecretAccessKeySetting);

	if (!idSet && !secretSet)
		return false;
	if (idSet != secretSet)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("only one of interactions_cron.s3_access_key_id and interactions_cron.s3_secret_access_key is set"),
				 errhint("Set both, or neither to use interactions_cron.s3_credentials_file or the server's AWS_* environment.")));
	RequireSafeCredentialSettings();
	target->accessKeyId = pstrdup(S3AccessKeyIdSetting);
	target->secretAccessKey = pstrdup(S3SecretAccessKeySetting);
	target->sessionToken = NULL;
	return true;
}

/*
 * RequirePrivateFile refuses a credentials file that is not a regular file
 * owned by the server's OS user and closed to group and others, as libpq
 * and the server refuse such a private key: anyone else who can read it has
 * the keys, and anyone who can write it chooses them.
 */
static void
RequirePrivateFile(const char *path, const struct stat *status)
{
	if (!S_ISREG(status->st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("S3 credentials file \"%s\" is not a regular file", path),
				 errhint("Point interactions_cron.s3_credentials_file at an AWS shared credentials file.")));
	if (status->st_uid != geteuid())
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("S3 credentials file \"%s\" is not owned by the server's OS user", path),
				 errhint("Make the server's OS user own it: chown postgres \"%s\" (or the user the server runs as).",
						 path)));
	if ((status->st_mode & (S_IRWXG | S_IRWXO)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("S3 credentials file \"%s\" has group or world access", path),
				 errdetail("Its permissions are %04o; they must be u=rw (0600) or less.",
						   (unsigned int) (status->st_mode & 07777)),
				 errhint("chmod 0600 \"%s\"", path)));
	if (status->st_size > MAX_CREDENTIALS_FILE_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("S3 credentials file \"%s\" is larger than %d bytes", path,
						MAX_CREDENTIALS_FILE_BYTES)));
}

/*
 * ReadCredentialsFile returns the contents of the credentials file after
 * checking it.  O_NONBLOCK keeps a FIFO from stalling the open; whatever is
 * opened is checked through its descriptor, so it cannot be swapped between
 * the check and the read.
 */
static char *
ReadCredentialsFile(const char *path)
{
	int			fd = OpenTransientFile(path, O_RDONLY | O_NONBLOCK | PG_BINARY);
	struct stat status;
	char	   *contents;
	ssize_t		got;

	if (fd < 0 || fstat(fd, &status) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open S3 credentials file \"%s\": %m", path)));
	RequirePrivateFile(path, &status);

	contents = palloc(status.st_size + 1);
	got = read(fd, contents, status.st_size);
	if (got < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read S3 credentials file \"%s\": %m", path)));
	contents[got] = '\0';
	CloseTransientFile(fd);
	return contents;
}

/*
 * Trim returns a line without its leading and trailing blanks, in place.
 */
static char *
Trim(char *text)
{
	char	   *end;

	text += strspn(text, " \t\r");
	end = text + strlen(text);
	while (end > text && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return text;
}

/*
 * TakeProfileKey keeps a key = value line of the chosen profile.  Other keys
 * (region, output, ...) are not credentials and are ignored.
 */
static void
TakeProfileKey(ProfileCredentials *found, const char *key, const char *value)
{
	if (strcmp(key, "aws_access_key_id") == 0)
		found->accessKeyId = pstrdup(value);
	else if (strcmp(key, "aws_secret_access_key") == 0)
		found->secretAccessKey = pstrdup(value);
	else if (strcmp(key, "aws_session_token") == 0)
		found->sessionToken = pstrdup(value);
}

/*
 * ParseProfile reads the profile's keys out of a credentials file's text
 * (the AWS format: [profile] headers, key = value lines, # and ; comments)
 * and says whether the profile was there.  A malformed line is reported by
 * its number only, since it may hold a secret.
 */
static bool
ParseProfile(char *contents, const char *path, const char *profile, ProfileCredentials *found)
{
	bool		inProfile = false;
	bool		profileSeen = false;
	int			lineNumber = 0;
	char	   *savePointer = NULL;

	for (char *line = strtok_r(contents, "\n", &savePointer); line != NULL;
		 line = strtok_r(NULL, "\n", &savePointer))
	{
		char	   *text = Trim(line);
		char	   *equals;

		lineNumber++;
		if (text[0] == '\0' || text[0] == '#' || text[0] == ';')
			continue;
		if (text[0] == '[' && text[strlen(text) - 1] == ']')
		{
			text[strlen(text) - 1] = '\0';
			inProfile = strcmp(Trim(text + 1), profile) == 0;
			profileSeen = profileSeen || inProfile;
			continue;
		}
		equals = strchr(text, '=');
		if (equals == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("S3 credentials file \"%s\" has a malformed line %d", path, lineNumber),
					 errhint("Each line must be a [profile] header, a key = value line or a comment.")));
		if (!inProfile)
			continue;
		*equals = '\0';
		TakeProfileKey(found, Trim(text), Trim(equals + 1));
	}
	return profileSeen;
}

/*
 * CredentialsFromFile takes the credentials of the configured profile of
 * interactions_cron.s3_credentials_file, when it is set.  The file's text
 * is wiped once parsed.
 */
static bool
CredentialsFromFile(S3Target *target)
{
	const char *path = S3CredentialsFileSetting;
	const char *profile = S3CredentialsProfileSetting;
	ProfileCredentials found = {0};
	char	   *contents;
	size_t		length;
	bool		profileSeen;

	if (!IsSet(path))
		return false;
	contents = ReadCredentialsFile(path);
	length = strlen(contents);
	profileSeen = ParseProfile(contents, path, profile, &found);
	memset(contents, 0, length);
	pfree(contents);

	if (!profileSeen)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("S3 credentials file \"%s\" has no profile [%s]", path, profile),
				 errhint("Add the profile, or set interactions_cron.s3_credentials_profile to one the file has.")));
	if (!IsSet(found.accessKeyId) || !IsSet(found.secretAccessKey))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("profile [%s] of S3 credentials file \"%s\" lacks aws_access_key_id or aws_secret_access_key",
						profile, path)));
	target->accessKeyId = found.accessKeyId;
	target->secretAccessKey = found.secretAccessKey;
	target->sessionToken = IsSet(found.sessionToken) ? found.sessionToken : NULL;
	return true;
}

/*
 * CredentialsFromEnvironment takes AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
 * and AWS_SESSION_TOKEN from the server's environment.
 */
static bool
CredentialsFromEnvironment(S3Target *target)
{
	const char *accessKeyId = getenv("AWS_ACCESS_KEY_ID");
	const char *secretAccessKey = getenv("AWS_SECRET_ACCESS_KEY");
	const char *sessionToken = getenv("AWS_SESSION_TOKEN");

	if (!IsSet(accessKeyId) || !IsSet(secretAccessKey))
		return false;
	target->accessKeyId = pstrdup(accessKeyId);
	target->secretAccessKey = pstrdup(secretAccessKey);
	target->sessionToken = IsSet(sessionToken) ? pstrdup(sessionToken) : NULL;
	return true;
}

/*
 * S3ResolveCredentials fills in the target's credentials from the first
 * source that holds some (see the top of this file), and fails when none
 * does.
 */
void
S3ResolveCredentials(S3Target *target)
{
	if (CredentialsFromSettings(target) || CredentialsFromFile(target) ||
		CredentialsFromEnvironment(target))
		return;

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("interactions_cron.storage is 's3' but no S3 credentials are configured"),
			 errhint("Set interactions_cron.s3_access_key_id and interactions_cron.s3_secret_access_key in postgresql.conf, "
					 "point interactions_cron.s3_credentials_file at an AWS credentials file, "
					 "or give the server AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in its environment.")));
}
