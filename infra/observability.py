"""Alarms and the dashboard."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        alarm_email: str,
        api: apigw.RestApi,
        functions: Mapping[str, lambda_.Function],
        state_machine: sfn.StateMachine,
        status_queue: sqs.Queue,
        dead_letter_queue: sqs.Queue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Alarms", display_name=f"Fleetwave {stage} alarms", enforce_ssl=True)
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        action = cw_actions.SnsAction(self.topic)
        five_minutes = Duration.minutes(5)

        def alarm(
            construct_id: str, metric: cloudwatch.IMetric, description: str, threshold: float = 1
        ) -> cloudwatch.Alarm:
            created = cloudwatch.Alarm(
                self,
                construct_id,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            created.add_alarm_action(action)
            return created

        self.alarms: list[cloudwatch.Alarm] = [
            alarm(
                "RolloutFailed",
                state_machine.metric_failed(period=five_minutes, statistic="Sum"),
                "A rollout execution failed: its job may not have been finalized (Finalize catches every "
                "expected error, so this means something unexpected).",
            ),
            alarm(
                "RolloutTimedOut",
                state_machine.metric_timed_out(period=five_minutes, statistic="Sum"),
                "A rollout execution timed out.",
            ),
            alarm(
                "StatusDeadLetters",
                dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=five_minutes, statistic="Maximum"
                ),
                "Robot status reports could not be processed and were moved to the dead-letter queue.",
            ),
            alarm(
                "StatusBacklog",
                status_queue.metric_approximate_age_of_oldest_message(
                    period=five_minutes, statistic="Maximum"
                ),
                "Robot status reports have waited in the status queue for over 15 minutes: the status "
                "function is failing or throttled (each report is retried, then dead-lettered).",
                threshold=900,
            ),
            alarm(
                "ApiServerErrors",
                api.metric_server_error(period=five_minutes, statistic="Sum"),
                "The API answered with 5xx errors.",
            ),
        ]
        for name, function in sorted(functions.items()):
            self.alarms.append(
                alarm(
                    f"{_pascal(name)}Errors",
                    function.metric_errors(period=five_minutes, statistic="Sum"),
                    f"The {name} function raised errors.",
                )
            )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"fleetwave-{stage}")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[api.metric_count(period=five_minutes)],
                right=[
                    api.metric_client_error(period=five_minutes),
                    api.metric_server_error(period=five_minutes),
                ],
            ),
            cloudwatch.GraphWidget(
                title="API latency (p90)",
                left=[api.metric_latency(period=five_minutes, statistic="p90")],
            ),
            cloudwatch.GraphWidget(
                title="Rollouts",
                left=[
                    state_machine.metric_started(period=five_minutes),
                    state_machine.metric_succeeded(period=five_minutes),
                    state_machine.metric_failed(period=five_minutes),
                    state_machine.metric_timed_out(period=five_minutes),
                ],
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Function errors",
                left=[
                    function.metric_errors(period=five_minutes) for _, function in sorted(functions.items())
                ],
            ),
            cloudwatch.GraphWidget(
                title="Function duration (p90)",
                left=[
                    function.metric_duration(period=five_minutes, statistic="p90")
                    for _, function in sorted(functions.items())
                ],
            ),
            cloudwatch.GraphWidget(
                title="Robot status queue",
                left=[status_queue.metric_approximate_number_of_messages_visible(period=five_minutes)],
                right=[dead_letter_queue.metric_approximate_number_of_messages_visible(period=five_minutes)],
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24),
        )


def _pascal(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))
