/*
 * aws_credentials_answer.c
 *	  What the sources of temporary credentials share: a setting that falls
 *	  back to the server's environment, a token file, the JSON answer of the
 *	  container endpoint and of EC2 instance metadata, and expiration times.
 *
 * The JSON is parsed with PostgreSQL's own parser (common/jsonapi.h), not
 * through jsonb_in, whose syntax errors quote the text they choke on, which
 * here holds a secret: a failure is reported by its kind alone.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "storage/fd.h"
#include "utils/datetime.h"

#include "interactions_cron/aws_credential_sources.h"
#include "interactions_cron/pg_compat.h"

/* A token file larger than this is not one (a JWT is a few kB). */
#define MAX_TOKEN_FILE_BYTES (16 * 1024)

/* The members of a credentials answer that are read. */
enum AnswerField
{
	ANSWER_ACCESS_KEY_ID,
	ANSWER_SECRET_ACCESS_KEY,
	ANSWER_TOKEN,
	ANSWER_EXPIRATION,
	ANSWER_CODE,
	ANSWER_FIELD_COUNT
};

static const char *const AnswerFieldNames[ANSWER_FIELD_COUNT] = {
	"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "Code"
};

/* The parser's state: the top-level string members read so far. */
typedef struct AnswerParse
{
	JsonLexContext *lex;
	int			currentField;	/* -1: a member that is not read */
	char	   *values[ANSWER_FIELD_COUNT];
} AnswerParse;

/*
 * SettingOrEnvironment returns a setting when it holds a value, else the
 * server's environment variable (what systemd or the container gave the
 * postmaster), else NULL: an explicit setting comes first.
 */
const char *
SettingOrEnvironment(const char *setting, const char *variable)
{
	const char *value;

	if (setting != NULL && setting[0] != '\0')
		return setting;
	value = getenv(variable);
	return (value != NULL && value[0] != '\0') ? value : NULL;
}

/*
 * ReadTokenFile returns the contents of a token file (a web identity token,
 * a container authorization token) without surrounding blanks; it is read
 * at every use, since its owner rotates it.  what names the file in errors.
 */
char *
ReadTokenFile(const char *path, const char *what)
{
	int			fd = OpenTransientFile(path, O_RDONLY | O_NONBLOCK | PG_BINARY);
	struct stat status;
	char	   *contents;
	ssize_t		got;
	size_t		length;

	if (fd < 0 || fstat(fd, &status) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open %s \"%s\": %m", what, path)));
	if (!S_ISREG(status.st_mode) || status.st_size > MAX_TOKEN_FILE_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("%s \"%s\" is not a regular file of at most %d bytes", what, path,
						MAX_TOKEN_FILE_BYTES)));
	contents = palloc(status.st_size + 1);
	got = read(fd, contents, status.st_size);
	if (got < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read %s \"%s\": %m", what, path)));
	CloseTransientFile(fd);
	contents[got] = '\0';
	length = strlen(contents);
	while (length > 0 && strchr(" \t\r\n", contents[length - 1]) != NULL)
		contents[--length] = '\0';
	if (length == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("%s \"%s\" is empty", what, path)));
	return contents;
}

/*
 * RememberField notes which top-level member the next value belongs to.
 */
static JsonCallbackResult
RememberField(void *state, char *name, bool isnull)
{
	AnswerParse *parse = state;

	parse->currentField = -1;
	if (parse->lex->lex_level != 1)
		return JSON_CALLBACK_DONE;
	for (int i = 0; i < ANSWER_FIELD_COUNT; i++)
		if (strcmp(name, AnswerFieldNames[i]) == 0)
			parse->currentField = i;
	return JSON_CALLBACK_DONE;
}

/*
 * KeepScalar keeps the string value of a member that is read, and wipes
 * every other value.
 */
static JsonCallbackResult
KeepScalar(void *state, char *token, JsonTokenType type)
{
	AnswerParse *parse = state;

	if (parse->lex->lex_level == 1 && parse->currentField >= 0 && type == JSON_TOKEN_STRING &&
		parse->values[parse->currentField] == NULL)
	{
		parse->values[parse->currentField] = token;
		return JSON_CALLBACK_DONE;
	}
	explicit_bzero(token, strlen(token));
	pfree(token);
	return JSON_CALLBACK_DONE;
}

/*
 * AwsCredentialsFromJson reads the credentials of a container endpoint's or
 * EC2 instance metadata's answer ({"AccessKeyId", "SecretAccessKey",
 * "Token", "Expiration", and from IMDS "Code": "Success"}).  It returns
 * false, with the reason, when the answer is not such an object.
 */
bool
AwsCredentialsFromJson(const char *json, size_t length, AwsCredentials *credentials, char **problem)
{
	AnswerParse parse = {0};
	JsonSemAction actions = {0};
	JsonParseErrorType result;
	char	   *text = pnstrdup(json, length);

	parse.lex = MakeJsonLexContext(text, length, true);
	parse.currentField = -1;
	actions.semstate = &parse;
	actions.object_field_start = RememberField;
	actions.scalar = KeepScalar;
	result = pg_parse_json(parse.lex, &actions);
	explicit_bzero(text, length);
	if (parse.lex->strval != NULL)
		explicit_bzero(parse.lex->strval->data, parse.lex->strval->maxlen);

	*problem = NULL;
	if (result != JSON_SUCCESS)
		*problem = pstrdup("the answer is not valid JSON");
	else if (parse.values[ANSWER_CODE] != NULL && strcmp(parse.values[ANSWER_CODE], "Success") != 0)
		*problem = psprintf("the answer's Code is \"%s\", not \"Success\"", parse.values[ANSWER_CODE]);
	else if (parse.values[ANSWER_ACCESS_KEY_ID] == NULL || parse.values[ANSWER_SECRET_ACCESS_KEY] == NULL ||
			 parse.values[ANSWER_TOKEN] == NULL || parse.values[ANSWER_EXPIRATION] == NULL)
		*problem = pstrdup("the answer lacks AccessKeyId, SecretAccessKey, Token or Expiration");
	else if (!AwsExpirationTime(parse.values[ANSWER_EXPIRATION], &credentials->expiration))
		*problem = psprintf("the answer's Expiration \"%s\" is not an ISO 8601 UTC time",
							parse.values[ANSWER_EXPIRATION]);
	if (*problem != NULL)
	{
		AwsCredentials unused = {
			parse.values[ANSWER_ACCESS_KEY_ID], parse.values[ANSWER_SECRET_ACCESS_KEY],
			parse.values[ANSWER_TOKEN], 0
		};

		AwsCredentialsWipe(&unused);
		return false;
	}
	credentials->accessKeyId = parse.values[ANSWER_ACCESS_KEY_ID];
	credentials->secretAccessKey = parse.values[ANSWER_SECRET_ACCESS_KEY];
	credentials->sessionToken = parse.values[ANSWER_TOKEN];
	return true;
}

/*
 * AwsExpirationTime reads the UTC time in which AWS states an expiration
 * (2026-03-30T01:02:03Z, with optional fractional seconds), and says whether
 * it could.
 */
bool
AwsExpirationTime(const char *text, TimestampTz *expiration)
{
	struct pg_tm tm = {0};
	int			consumed = 0;
	const char *rest;

	if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 || consumed == 0)
		return false;
	rest = text + consumed;
	if (*rest == '.')
		rest += 1 + strspn(rest + 1, "0123456789");
	if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0)
		return false;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
		tm.tm_mday > day_tab[isleap(tm.tm_year)][tm.tm_mon - 1] ||
		tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return false;
	return tm2timestamp(&tm, 0, NULL, expiration) == 0;
}
