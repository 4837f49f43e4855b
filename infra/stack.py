"""The Fleetwave stack: composes one construct per concern and wires the grants between them."""

from __future__ import annotations

from importlib.resources.abc import Traversable

from aws_cdk import Aws, CfnOutput, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as event_sources
from constructs import Construct
from fleetwave_service.engine.messages import COMMAND_TOPIC, STATUS_TOPIC
from fleetwave_service.lambdas import BY_NAME, STEP_FUNCTIONS

from infra.api import Api
from infra.config import StageConfig
from infra.data import Data
from infra.engine import (
    ASL_PATH,
    COMMAND_WILDCARD_FINDINGS,
    COMMAND_WILDCARD_REASON,
    LINKS_WILDCARD_FINDINGS,
    LINKS_WILDCARD_REASON,
    IotDataEndpoint,
    JobEvents,
    Rollout,
    StatusIngest,
)
from infra.fleet import (
    CERT_WILDCARD_FINDINGS,
    CERT_WILDCARD_REASON,
    CLAIM_WILDCARD_FINDINGS,
    CLAIM_WILDCARD_REASON,
    THING_WILDCARD_FINDINGS,
    THING_WILDCARD_REASON,
    ClaimProvisioning,
    RobotAccess,
)
from infra.functions import FunctionFactory, FunctionSpec
from infra.nag import acknowledge, arn_of
from infra.observability import Monitoring
from infra.robomaker import Bundles
from infra.routes import ROUTES

# Every function of the service, from the one table the local runtime and the tests read too.
FUNCTION_SPECS: dict[str, FunctionSpec] = dict(BY_NAME)
# The status path's figures, consistent with the status function's timeout (docs/reliability.md):
# - batches of up to 100 reports, gathered for at most 1 s;
# - visibility timeout = 6 x the function's timeout (AWS's guidance for Lambda event sources: the poller may
#   retry a throttled invoke within that time without the batch becoming visible again);
# - a record is received at most STATUS_MAX_RECEIVES times before the dead-letter queue (AWS recommends at
#   least 5, so a throttled or briefly failing handler does not dead-letter good reports): with the
#   visibility timeout, a report is retried for at least 5 x 6 min before it is given up on;
# - at most STATUS_MAX_CONCURRENCY concurrent batches (the event source's maximum concurrency), which bounds
#   the write rate on the job's rows without a reserved concurrency (whose throttles count as receives).
STATUS_BATCH_SIZE = 100
STATUS_BATCH_WINDOW_SECONDS = 1
STATUS_VISIBILITY_FACTOR = 6
STATUS_MAX_RECEIVES = 5
STATUS_MAX_CONCURRENCY = 50


class FleetwaveStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        asl_path: Traversable = ASL_PATH,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        retention = config.log_retention

        data = Data(self, "Data")
        bundles = Bundles(self, "Bundles", extra_bucket_names=config.bundle_bucket_names)
        job_events = JobEvents(self, "Events")
        robots = RobotAccess(self, "Robots")
        endpoint = IotDataEndpoint(self, "IotEndpoint", configured=config.iot_data_endpoint)

        factory = FunctionFactory(
            self,
            "Functions",
            log_retention=retention,
            environment={
                "FLEETWAVE_TABLE_NAME": data.table.table_name,
                "FLEETWAVE_IDEMPOTENCY_TABLE_NAME": data.idempotency_table.table_name,
                "FLEETWAVE_BUNDLE_BUCKET": bundles.bucket.bucket_name,
                "FLEETWAVE_EVENT_BUS_NAME": job_events.bus.event_bus_name,
                "FLEETWAVE_CHANNEL": "iot",
                "FLEETWAVE_IOT_DATA_ENDPOINT": endpoint.url,
                "FLEETWAVE_ACCOUNT_ID": Aws.ACCOUNT_ID,
                "FLEETWAVE_PARTITION": Aws.PARTITION,
                "FLEETWAVE_THING_TYPE_NAME": robots.thing_type.ref,
            },
        )
        steps = {function.name: factory.make(function) for function in STEP_FUNCTIONS.values()}
        rollout = Rollout(self, "Rollout", step_functions=steps, log_retention=retention, asl_path=asl_path)
        machine = rollout.state_machine
        api_function = factory.make(
            FUNCTION_SPECS["api"], {"FLEETWAVE_STATE_MACHINE_ARN": machine.state_machine_arn}
        )
        status_function = factory.make(FUNCTION_SPECS["status"])
        hook_function = factory.make(FUNCTION_SPECS["provisioning_hook"])
        functions = {
            **steps,
            "api": api_function,
            "status": status_function,
            "provisioning_hook": hook_function,
        }

        # --- grants: each function gets what its code calls, nothing more ---------------------------
        for function in functions.values():
            data.table.grant_read_write_data(function)
            acknowledge(
                function.role,
                "IAM5",
                "Queries go through the table's global secondary indexes (gsi1, gsi2); '<table>/index/*' "
                "names only this table's indexes.",
                findings=[f"Resource::{arn_of(data.table)}/index/*"],
            )
        # Idempotency records: the Greengrass front door's client tokens.
        data.idempotency_table.grant_read_write_data(api_function)
        # Job events for subscribers (engine/job_events.py): status changes (finalize), an approval gate
        # reached (evaluate), approvals, pauses, resumes and rollbacks (the API's extension operations).
        for name in ("finalize", "evaluate", "api"):
            job_events.bus.grant_put_events_to(functions[name])
        # Start a rollout (engine/starter.py), fail the outstanding wave token on cancel
        # (engine/cancel.py), complete a wave when its last robot reports (engine/reports.py).
        machine.grant_start_execution(api_function)
        machine.grant_task_response(api_function)
        machine.grant_task_response(status_function)
        # Release wave fails its own token when the job was canceled meanwhile, and completes it when the
        # wave ends inside the step (every command undeliverable, or every robot answered before the step
        # returned: engine/steps.py release_wave -> complete_wave_if_done). The machine already
        # depends on this function (its ARN is substituted into the definition), so the grant goes in a
        # policy of its own: in the function's default policy it would close a dependency cycle.
        # Hold does the same for its own token when the approval or resume it waits for came first.
        iam.Policy(
            self,
            "ReleaseWaveTaskResponse",
            roles=[steps["release_wave"].role, steps["hold"].role],
            statements=[
                iam.PolicyStatement(
                    actions=["states:SendTaskFailure", "states:SendTaskSuccess"],
                    resources=[machine.state_machine_arn],
                )
            ],
        )
        # Robots are things, fleets are thing groups (fleet/robots.py, fleet/fleets.py).
        robots.grant_registry(api_function)
        acknowledge(api_function.role, "IAM5", THING_WILDCARD_REASON, findings=THING_WILDCARD_FINDINGS)
        # DeleteRobot retires the robot's certificates and thing (fleet/registry.py retire_thing).
        robots.grant_retirement(api_function)
        acknowledge(api_function.role, "IAM5", CERT_WILDCARD_REASON, findings=CERT_WILDCARD_FINDINGS)
        # Fleet provisioning by claim: the template, its hook (reads robot rows), the claim policy.
        claims = ClaimProvisioning(self, "Claims", robots=robots, hook=hook_function)
        acknowledge(claims.role, "IAM5", CLAIM_WILDCARD_REASON, findings=CLAIM_WILDCARD_FINDINGS)
        # Commands to robots: release a wave (and abort it on cancel), stop unfinished robots (finalize),
        # clear a deleted robot's retained command (API).
        for name in ("release_wave", "finalize", "api"):
            robots.grant_publish_commands(functions[name])
            acknowledge(
                functions[name].role, "IAM5", COMMAND_WILDCARD_REASON, findings=COMMAND_WILDCARD_FINDINGS
            )
        # Bundles: the API reads a source's ETag (robomaker/bundles.py); release wave presigns the bundle and
        # download-condition URLs robots fetch (engine/aws.py), which needs read access itself.
        # The status function answers robots' link requests with fresh presigned URLs, on their links topic.
        for name in ("api", "release_wave", "status"):
            bundles.grant_read(functions[name])
        robots.grant_publish_links(status_function)
        acknowledge(status_function.role, "IAM5", LINKS_WILDCARD_REASON, findings=LINKS_WILDCARD_FINDINGS)

        # --- robot status path ---------------------------------------------------------------------
        ingest = StatusIngest(
            self,
            "StatusIngest",
            visibility_timeout=Duration.seconds(
                FUNCTION_SPECS["status"].timeout_seconds * STATUS_VISIBILITY_FACTOR
            ),
            max_receive_count=STATUS_MAX_RECEIVES,
            log_retention=retention,
        )
        status_function.add_event_source(
            event_sources.SqsEventSource(
                ingest.queue,
                batch_size=STATUS_BATCH_SIZE,
                max_batching_window=Duration.seconds(STATUS_BATCH_WINDOW_SECONDS),
                # The handler answers batchItemFailures (engine/status.py): only failed records return.
                report_batch_item_failures=True,
                max_concurrency=STATUS_MAX_CONCURRENCY,
            )
        )

        api = Api(
            self,
            "Api",
            handler=api_function,
            routes=ROUTES,
            stage=config.stage,
            throttle_rate_limit=config.throttle_rate_limit,
            throttle_burst_limit=config.throttle_burst_limit,
            log_retention=retention,
        )
        monitoring = Monitoring(
            self,
            "Monitoring",
            stage=config.stage,
            alarm_email=config.alarm_email,
            api=api.rest_api,
            functions=functions,
            state_machine=machine,
            status_queue=ingest.queue,
            dead_letter_queue=ingest.dead_letter_queue,
        )

        self.data, self.bundles, self.robots, self.ingest = data, bundles, robots, ingest
        self.rollout, self.api, self.monitoring, self.functions = rollout, api, monitoring, functions
        self.job_events = job_events
        self.claims = claims

        for output_id, value, description in (
            ("ApiUrl", api.url, "Base URL of the API (sign requests with SigV4, service execute-api)"),
            (
                "ApiInvokeArn",
                api.rest_api.arn_for_execute_api(),
                "Resource for the execute-api:Invoke permission callers need",
            ),
            (
                "CommandTopic",
                COMMAND_TOPIC.replace("{robot}", "{robotName}"),
                "Retained command topic a robot subscribes to",
            ),
            (
                "StatusTopic",
                STATUS_TOPIC.replace("{robot}", "{robotName}"),
                "Topic a robot reports status on",
            ),
            ("IotDataEndpoint", endpoint.url, "MQTT/TLS endpoint robots connect to (port 8883)"),
            ("RobotPolicyName", robots.policy.ref, "IoT policy to attach to each robot's certificate"),
            ("RobotThingTypeName", robots.thing_type.ref, "Thing type of robots"),
            (
                "ProvisioningTemplateName",
                claims.template.ref,
                "Fleet provisioning template robots register with by claim (RobotName parameter)",
            ),
            ("ClaimPolicyName", claims.claim_policy.ref, "IoT policy to attach to claim certificates"),
            ("BundleBucketName", bundles.bucket.bucket_name, "Bucket for robot-application bundles"),
            ("EventBusName", job_events.bus.event_bus_name, "EventBridge bus with deployment job events"),
            ("StateMachineArn", machine.state_machine_arn, "Rollout state machine"),
            ("TableName", data.table.table_name, "Main table (retained on stack deletion)"),
            ("AlarmTopicArn", monitoring.topic.topic_arn, "SNS topic the alarms notify"),
        ):
            CfnOutput(self, output_id, value=value, description=description)
