/*
 * s3_credentials.c
 *	  Where the S3 credentials of a run come from, and their renewal.
 *
 * One source supplies the key id, the secret and the session token together,
 * so that a key of one source is never signed with the secret of another;
 * the first source that holds credentials is used, in the order of the AWS
 * SDKs' default chain:
 *
 *	1. the settings interactions_cron.s3_access_key_id and
 *	   s3_secret_access_key (from postgresql.conf or ALTER SYSTEM only, see
 *	   CheckCredential in guc.c; they carry no session token);
 *	2. the AWS shared credentials file interactions_cron.s3_credentials_file,
 *	   profile interactions_cron.s3_credentials_profile;
 *	3. the server's environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 *	   AWS_SESSION_TOKEN;
 *	4. web identity (aws_web_identity.c: EKS IRSA);
 *	5. the container credentials endpoint (aws_container_credentials.c: ECS,
 *	   EKS Pod Identity);
 *	6. EC2 instance metadata, IMDSv2 (aws_instance_metadata.c), which falls
 *	   through to "no credentials" when nothing answers.
 *
 * The settings and the file are explicit choices of a superuser, so they
 * come before whatever environment the service manager gave the server.
 * Secrets never appear in a message: errors name the setting, the file, the
 * profile or a line number, never a line's contents.
 *
 * Sources 4 to 6 hand out temporary credentials.  They are kept per
 * process, in the process's memory, keyed by the source's configuration,
 * and reused until five minutes before they expire; then renewed before
 * the next request, and at once when S3 answers ExpiredToken.  Not per
 * server: a cache in shared memory would need the library preloaded and
 * would hand every backend's memory the secrets, and a cache file under the
 * data directory would travel into every base backup and replica.  The
 * price is one fetch per process: an export call asks once in the calling
 * backend and once in each export worker, a few link-local or STS requests
 * a minute under pg_cron, far below what those services allow.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/stringinfo.h"
#include "storage/fd.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "interactions_cron/aws_credential_sources.h"
#include "interactions_cron/guc.h"
#include "interactions_cron/s3_credentials.h"

/* A credentials file larger than this is not one. */
#define MAX_CREDENTIALS_FILE_BYTES (64 * 1024)

/* Temporary credentials are renewed this long before they expire. */
#define RENEW_AHEAD_MS (5 * 60 * 1000)
/* After a failed renewal, credentials still valid this long are used on. */
#define LAST_USE_MARGIN_MS (60 * 1000)
/* ... and the source is not asked again for this long. */
#define RENEWAL_RETRY_MS (30 * 1000)

/* Where credentials come from. */
typedef enum CredentialSource
{
	SOURCE_SETTINGS,
	SOURCE_CREDENTIALS_FILE,
	SOURCE_ENVIRONMENT,
	SOURCE_WEB_IDENTITY,
	SOURCE_CONTAINER,
	SOURCE_INSTANCE_METADATA
} CredentialSource;

static const char *const CredentialSourceNames[] = {
	"settings", "credentials file", "environment", "web identity", "container", "instance metadata"
};

/* A source of temporary credentials (aws_credential_sources.h). */
typedef struct RemoteSource
{
	CredentialSource source;
	char	   *(*configuration) (void);
	bool		(*fetch) (AwsCredentials *credentials, char **problem);
	bool		fallsThrough;	/* failing at first is "no credentials" */
} RemoteSource;

/* The chain's remote sources, in its order. */
static const RemoteSource RemoteSources[] = {
	{SOURCE_WEB_IDENTITY, WebIdentityConfiguration, FetchWebIdentityCredentials, false},
	{SOURCE_CONTAINER, ContainerConfiguration, FetchContainerCredentials, false},
	{SOURCE_INSTANCE_METADATA, InstanceMetadataConfiguration, FetchInstanceMetadataCredentials, true},
};

struct S3Credentials
{
	CredentialSource source;
	const RemoteSource *remote; /* NULL for the static sources */
	char	   *configuration;	/* the remote source's, which keys the cache */
	AwsCredentials current;		/* accessKeyId NULL until first fetched */
	TimestampTz nextRenewal;	/* after a failed renewal: not before then */
	MemoryContext context;		/* where current's strings live */
};

/* This process's temporary credentials, one per configuration (see top). */
static List *CachedCredentials = NIL;

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
CredentialsFromSettings(AwsCredentials *credentials)
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
	credentials->accessKeyId = pstrdup(S3AccessKeyIdSetting);
	credentials->secretAccessKey = pstrdup(S3SecretAccessKeySetting);
	credentials->sessionToken = NULL;
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
CredentialsFromFile(AwsCredentials *credentials)
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
	credentials->accessKeyId = found.accessKeyId;
	credentials->secretAccessKey = found.secretAccessKey;
	credentials->sessionToken = IsSet(found.sessionToken) ? found.sessionToken : NULL;
	return true;
}

/*
 * CredentialsFromEnvironment takes AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
 * and AWS_SESSION_TOKEN from the server's environment.
 */
static bool
CredentialsFromEnvironment(AwsCredentials *credentials)
{
	const char *accessKeyId = getenv("AWS_ACCESS_KEY_ID");
	const char *secretAccessKey = getenv("AWS_SECRET_ACCESS_KEY");
	const char *sessionToken = getenv("AWS_SESSION_TOKEN");

	if (!IsSet(accessKeyId) || !IsSet(secretAccessKey))
		return false;
	credentials->accessKeyId = pstrdup(accessKeyId);
	credentials->secretAccessKey = pstrdup(secretAccessKey);
	credentials->sessionToken = IsSet(sessionToken) ? pstrdup(sessionToken) : NULL;
	return true;
}

/*
 * AwsCredentialsWipe overwrites and frees a set of credentials' strings.
 */
void
AwsCredentialsWipe(AwsCredentials *credentials)
{
	char	  **strings[] = {&credentials->accessKeyId, &credentials->secretAccessKey,
	&credentials->sessionToken};

	for (int i = 0; i < (int) lengthof(strings); i++)
	{
		if (*strings[i] == NULL)
			continue;
		explicit_bzero(*strings[i], strlen(*strings[i]));
		pfree(*strings[i]);
		*strings[i] = NULL;
	}
}

/*
 * RenewalDue says whether temporary credentials are missing or within five
 * minutes of their expiry.
 */
static bool
RenewalDue(const S3Credentials *credentials, TimestampTz now)
{
	return credentials->current.accessKeyId == NULL ||
		(credentials->current.expiration != DT_NOEND &&
		 now >= TimestampTzPlusMilliseconds(credentials->current.expiration, -RENEW_AHEAD_MS));
}

/*
 * FetchFromSource asks the remote source for new credentials and, when it
 * gives some, replaces the current ones (wiped) with a copy in the
 * credentials' own context; else it returns false with the problem.
 */
static bool
FetchFromSource(S3Credentials *credentials, char **problem)
{
	AwsCredentials fetched = {0};

	if (!credentials->remote->fetch(&fetched, problem))
		return false;
	AwsCredentialsWipe(&credentials->current);
	credentials->current.accessKeyId = MemoryContextStrdup(credentials->context, fetched.accessKeyId);
	credentials->current.secretAccessKey = MemoryContextStrdup(credentials->context, fetched.secretAccessKey);
	credentials->current.sessionToken = MemoryContextStrdup(credentials->context, fetched.sessionToken);
	credentials->current.expiration = fetched.expiration;
	credentials->nextRenewal = 0;
	AwsCredentialsWipe(&fetched);
	if (RenewalDue(credentials, GetCurrentTimestamp()))
		ereport(LOG,
				(errmsg("interactions_cron: S3 credentials from %s expire at %s, in less than five minutes",
						CredentialSourceNames[credentials->source],
						timestamptz_to_str(credentials->current.expiration)),
				 errdetail("They are renewed before each request until the source hands out longer-lived ones.")));
	return true;
}

/*
 * RenewIfDue renews temporary credentials within five minutes of their
 * expiry and returns false, with the problem, when there are none usable.
 * A failed renewal keeps credentials valid for another minute, and the
 * source is not asked again for 30 seconds, so that a short outage of the
 * source does not fail an export whose credentials have not expired.
 */
static bool
RenewIfDue(S3Credentials *credentials, char **problem)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		stillValid;

	*problem = NULL;
	if (credentials->remote == NULL || !RenewalDue(credentials, now))
		return true;
	stillValid = credentials->current.accessKeyId != NULL &&
		now < TimestampTzPlusMilliseconds(credentials->current.expiration, -LAST_USE_MARGIN_MS);
	if (stillValid && now < credentials->nextRenewal)
		return true;
	if (FetchFromSource(credentials, problem))
		return true;
	if (!stillValid)
		return false;
	credentials->nextRenewal = TimestampTzPlusMilliseconds(now, RENEWAL_RETRY_MS);
	ereport(LOG,
			(errmsg("interactions_cron: could not renew the S3 credentials from %s: %s",
					CredentialSourceNames[credentials->source], *problem),
			 errdetail("The current ones are used until %s.",
					   timestamptz_to_str(credentials->current.expiration))));
	return true;
}

/*
 * CachedCredentialsFor returns this process's credentials of a remote
 * source's configuration, a new entry (without credentials yet) the first
 * time.  Entries are never freed: a run's target keeps pointing at one.
 */
static S3Credentials *
CachedCredentialsFor(const RemoteSource *remote, const char *configuration)
{
	S3Credentials *entry;
	ListCell   *cell;
	MemoryContext previous;

	foreach(cell, CachedCredentials)
	{
		entry = lfirst(cell);
		if (entry->remote == remote && strcmp(entry->configuration, configuration) == 0)
			return entry;
	}
	previous = MemoryContextSwitchTo(TopMemoryContext);
	entry = palloc0(sizeof(S3Credentials));
	entry->source = remote->source;
	entry->remote = remote;
	entry->configuration = pstrdup(configuration);
	entry->context = TopMemoryContext;
	CachedCredentials = lappend(CachedCredentials, entry);
	MemoryContextSwitchTo(previous);
	return entry;
}

/*
 * StaticCredentials returns the credentials of the first static source that
 * holds some, or NULL.
 */
static S3Credentials *
StaticCredentials(void)
{
	S3Credentials *credentials = palloc0(sizeof(S3Credentials));

	credentials->context = CurrentMemoryContext;
	credentials->current.expiration = DT_NOEND;
	if (CredentialsFromSettings(&credentials->current))
		credentials->source = SOURCE_SETTINGS;
	else if (CredentialsFromFile(&credentials->current))
		credentials->source = SOURCE_CREDENTIALS_FILE;
	else if (CredentialsFromEnvironment(&credentials->current))
		credentials->source = SOURCE_ENVIRONMENT;
	else
	{
		pfree(credentials);
		return NULL;
	}
	return credentials;
}

/*
 * S3ResolveCredentials returns the credentials of the first source that
 * holds some (see the top of this file), fetching temporary ones unless this
 * process has them, and fails when none does.
 */
S3Credentials *
S3ResolveCredentials(void)
{
	S3Credentials *credentials = StaticCredentials();
	char	   *fellThrough = NULL;

	if (credentials != NULL)
		return credentials;
	for (int i = 0; i < (int) lengthof(RemoteSources); i++)
	{
		const RemoteSource *remote = &RemoteSources[i];
		char	   *configuration = remote->configuration();
		char	   *problem;

		if (configuration == NULL)
			continue;
		credentials = CachedCredentialsFor(remote, configuration);
		if (RenewIfDue(credentials, &problem))
			return credentials;
		if (remote->fallsThrough)
		{
			fellThrough = problem;
			continue;
		}
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("could not obtain S3 credentials from %s: %s",
						CredentialSourceNames[remote->source], problem)));
	}

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("interactions_cron.storage is 's3' but no S3 credentials are configured"),
			 fellThrough ? errdetail("%s.", fellThrough) : errdetail("EC2 instance metadata is turned off."),
			 errhint("Set interactions_cron.s3_access_key_id and interactions_cron.s3_secret_access_key in postgresql.conf, "
					 "point interactions_cron.s3_credentials_file at an AWS credentials file, "
					 "give the server AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in its environment, "
					 "or run it with a role: web identity, container credentials or an EC2 instance profile.")));
	return NULL;				/* keep the compiler quiet */
}

/*
 * S3CredentialsForRequest returns the credentials to sign the next request
 * with, renewing temporary ones that expire within five minutes.
 */
const AwsCredentials *
S3CredentialsForRequest(S3Credentials *credentials)
{
	char	   *problem;

	if (!RenewIfDue(credentials, &problem))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("could not renew the S3 credentials from %s: %s",
						CredentialSourceNames[credentials->source], problem),
				 errdetail("The current ones have expired.")));
	return &credentials->current;
}

/*
 * S3RenewCredentials renews temporary credentials at once, after S3 refused
 * them as expired; it returns false for static ones, which cannot be.
 */
bool
S3RenewCredentials(S3Credentials *credentials)
{
	char	   *problem;

	if (credentials->remote == NULL)
		return false;
	if (!FetchFromSource(credentials, &problem))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("could not renew the S3 credentials from %s: %s",
						CredentialSourceNames[credentials->source], problem),
				 errdetail("S3 refused the current ones as expired.")));
	return true;
}

/*
 * S3CredentialsSourceName names where the credentials come from, for the
 * run's result.
 */
const char *
S3CredentialsSourceName(const S3Credentials *credentials)
{
	return CredentialSourceNames[credentials->source];
}
