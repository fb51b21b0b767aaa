/*
 * pg_compat.h
 *	  Every difference between the PostgreSQL majors interactions_cron
 *	  builds against, in one place.
 *
 * Tested on 15 (Debian bookworm), 17 (trixie) and 18 (sid).  16 is in no
 * Debian suite and is not tested; the conditionals below were checked
 * against its headers (REL_16: stringToQualifiedNameList's escontext and
 * pgstat_get_local_beentry_by_index are there, BackendId, PGPROC.lxid and
 * session_auth_is_superuser still are), so each names the release that made
 * the change.  Include it after postgres.h and the headers it names.
 */
#ifndef INTERACTIONS_CRON_PG_COMPAT_H
#define INTERACTIONS_CRON_PG_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "interactions_cron needs PostgreSQL 15 or later (tested: 15, 17, 18)"
#endif

/*
 * StringToQualifiedNameList splits a (possibly quoted) qualified name,
 * raising an error on bad syntax; 16 gave stringToQualifiedNameList a
 * soft-error context, which NULL leaves raising errors as before.
 */
#if PG_VERSION_NUM >= 160000
#define StringToQualifiedNameList(string) stringToQualifiedNameList((string), NULL)
#else
#define StringToQualifiedNameList(string) stringToQualifiedNameList(string)
#endif

/*
 * LocalBackendStatusByIndex returns the backend status snapshot's entry
 * number index (1 .. pgstat_fetch_stat_numbackends()); 16 renamed
 * pgstat_fetch_stat_local_beentry, same meaning.
 */
#if PG_VERSION_NUM >= 160000
#define LocalBackendStatusByIndex(index) pgstat_get_local_beentry_by_index(index)
#else
#define LocalBackendStatusByIndex(index) pgstat_fetch_stat_local_beentry(index)
#endif

/*
 * VirtualTransactionProc returns the PGPROC slot that a virtual transaction
 * id names, or NULL; ProcLocalTransactionId is the local transaction id that
 * slot runs now.  17 replaced backend ids by proc numbers and moved PGPROC's
 * lxid into its vxid.
 */
#if PG_VERSION_NUM >= 170000
#define VirtualTransactionProc(vxid) ProcNumberGetProc((vxid).procNumber)
#define ProcLocalTransactionId(proc) ((proc)->vxid.lxid)
#else
#define VirtualTransactionProc(vxid) BackendIdGetProc((vxid).backendId)
#define ProcLocalTransactionId(proc) ((proc)->lxid)
#endif

/*
 * CurrentRoleIsSuperuser is the is_superuser setting: whether the current
 * role (SET ROLE's, else the session user) is a superuser.  It is what
 * PostgreSQL's parallel workers get from their leader for SetCurrentRoleId
 * on every version (parallel.c: session_auth_is_superuser up to 16,
 * current_role_is_superuser from 17, which only renamed the variable), so
 * an export worker adopts the caller's role exactly as a parallel worker
 * does.
 */
#if PG_VERSION_NUM >= 170000
#define CurrentRoleIsSuperuser current_role_is_superuser
#else
#define CurrentRoleIsSuperuser session_auth_is_superuser
#endif

/*
 * MakeJsonLexContext starts a JSON lexer on a UTF-8 text of a given length,
 * in memory of its own; JsonCallbackResult is what a semantic action
 * returns, and JSON_CALLBACK_DONE how it says it went on.  16 made the
 * actions return an error code; 17 let the caller provide the context (NULL
 * still allocates one) and took the text as const.
 */
#if PG_VERSION_NUM >= 170000
#define MakeJsonLexContext(json, length, needEscapes) \
	makeJsonLexContextCstringLen(NULL, (json), (length), PG_UTF8, (needEscapes))
#else
#define MakeJsonLexContext(json, length, needEscapes) \
	makeJsonLexContextCstringLen((json), (int) (length), PG_UTF8, (needEscapes))
#endif
#if PG_VERSION_NUM >= 160000
#define JsonCallbackResult JsonParseErrorType
#define JSON_CALLBACK_DONE JSON_SUCCESS
#else
#define JsonCallbackResult void
#define JSON_CALLBACK_DONE
#endif

/*
 * PrimaryKeyIndex returns a table's primary key index; 18 added whether a
 * deferrable one will do (ours is not deferrable).
 */
#if PG_VERSION_NUM >= 180000
#define PrimaryKeyIndex(relation) RelationGetPrimaryKeyIndex((relation), false)
#else
#define PrimaryKeyIndex(relation) RelationGetPrimaryKeyIndex(relation)
#endif

/*
 * IndexBeginScan starts an index scan; 18 added the instrumentation to
 * fill, which NULL leaves out.
 */
#if PG_VERSION_NUM >= 180000
#define IndexBeginScan(heap, index, snapshot, keys, orderBys) \
	index_beginscan((heap), (index), (snapshot), NULL, (keys), (orderBys))
#else
#define IndexBeginScan(heap, index, snapshot, keys, orderBys) \
	index_beginscan((heap), (index), (snapshot), (keys), (orderBys))
#endif

/*
 * Base64Encode writes bytes in base64; 18 declared them as uint8.
 */
#if PG_VERSION_NUM >= 180000
#define Base64Encode(bytes, length, encoded, encodedLength) \
	pg_b64_encode((bytes), (length), (encoded), (encodedLength))
#else
#define Base64Encode(bytes, length, encoded, encodedLength) \
	pg_b64_encode((const char *) (bytes), (length), (encoded), (encodedLength))
#endif

#endif							/* INTERACTIONS_CRON_PG_COMPAT_H */
