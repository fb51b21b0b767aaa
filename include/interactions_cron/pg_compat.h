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

#endif							/* INTERACTIONS_CRON_PG_COMPAT_H */
