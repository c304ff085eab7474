"""/api/v1 jobs: submit register-snapshot jobs and follow them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from catalog import errors
from catalog.auth.deps import AuthorizerDep, CurrentPrincipal
from catalog.authz.model import Action, Securable
from catalog.service.jobs import RegisterRequest
from datlake_ext.deps import NEXT_PAGE_HEADER, DetachedDep, JobsDep, is_admin
from datlake_ext.schemas import JobAccepted, JobDetail, RegisterSnapshotRequest

router = APIRouter(prefix="/api/v1", tags=["Jobs"])


@router.post(
    "/jobs/register-snapshot",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Register Parquet objects as a new snapshot of a table (asynchronously)",
    responses={202: {"headers": {"Location": {"description": "URL of the job", "schema": {"type": "string"}}}}},
)
def register_snapshot(
    body: RegisterSnapshotRequest,
    principal: CurrentPrincipal,
    authorizer: AuthorizerDep,
    detached: DetachedDep,
    jobs: JobsDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=255, description="Resubmitting with the same key returns the same job."),
    ] = None,
) -> JobAccepted:
    warehouse = detached.warehouse()
    plan = jobs.plan(
        warehouse,
        RegisterRequest(
            table_name=body.table_name, uri=body.uri, format=body.format, mode=body.mode, schema=body.table_schema
        ),
    )
    if jobs.table_exists(plan):
        action = Action.REGISTER_SNAPSHOT_APPEND if plan.mode == "append" else Action.REGISTER_SNAPSHOT_OVERWRITE
        authorizer.require(principal, action, Securable.table(warehouse.id, plan.namespace, plan.table))
    else:
        authorizer.require(principal, Action.CREATE_TABLE, Securable.of_namespace(warehouse.id, plan.namespace))
    job = jobs.submit(plan, principal.name, idempotency_key or None)
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return JobAccepted(job_id=job.id, status=job.status)


@router.get("/jobs/{job_id}", summary="The state of a job (its submitter and administrators only)")
def get_job(job_id: str, principal: CurrentPrincipal, authorizer: AuthorizerDep, jobs: JobsDep) -> JobDetail:
    job = jobs.get(job_id)
    if job.submitted_by != principal.name and not is_admin(principal, authorizer):
        raise errors.NotFound(f"Job does not exist: {job_id}")
    return JobDetail.of(job)


@router.get("/jobs", summary="The caller's jobs, newest first")
def list_jobs(
    principal: CurrentPrincipal,
    authorizer: AuthorizerDep,
    jobs: JobsDep,
    response: Response,
    page_token: Annotated[str | None, Query(description="`X-Next-Page-Token` of the previous page.")] = None,
    page_size: Annotated[int | None, Query(ge=1, le=1000, description="Jobs per page (default 100).")] = None,
    all_principals: Annotated[bool, Query(alias="all", description="Everyone's jobs (administrators only).")] = False,
) -> list[JobDetail]:
    if all_principals and not is_admin(principal, authorizer):
        raise errors.Forbidden(f"{principal.name} may not list other principals' jobs")
    page = jobs.list_jobs(None if all_principals else principal.name, page_token, page_size)
    if page.next_page_token:
        response.headers[NEXT_PAGE_HEADER] = page.next_page_token
    return [JobDetail.of(job) for job in page.jobs]
