"""Alerts on Amazon SNS: a failed run, and the raw files a run rejected.

Both go to the topic of the ``[music_kpis] alerts_topic_arn`` setting (settings.py), through the
``aws_default`` connection; with no topic set nothing is sent. The failure alert is the Amazon
provider's SnsNotifier as the DAG's on_failure_callback: Airflow calls it once per failed run
(the DAG processor on a scheduler, dag.test() in-process), with the last failed task in its context.
"""

from __future__ import annotations

import logging

import jinja2
from airflow.providers.amazon.aws.hooks.sns import SnsHook
from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

from include.music_kpis.settings import AWS_CONN_ID

log = logging.getLogger(__name__)

# SNS subjects: ASCII, at most 100 characters, no line breaks.
FAILURE_SUBJECT = "Airflow: a run of {{ dag.dag_id }} failed"
# Rendered by the notifier with the callback's context. Its `ti` is the task instance Airflow picks
# for the callback: a failed one from Airflow 3.1, the run's last one on 3.0, so it is named plainly.
FAILURE_MESSAGE = """\
The run {{ run_id }} of DAG {{ dag.dag_id }} failed ({{ reason }}).
{%- if ti is defined %}
Task: {{ ti.task_id }}
{%- if ti.map_index is not none and ti.map_index >= 0 %} (map index {{ ti.map_index }}){% endif %}.
{%- endif %}
The run's failed tasks are in the Airflow UI, and each one's log says why: a quality check names
the check and the dates it checked, a failed COPY names the file, line, column and reason, and a
rejected file is named with its reason.
"""


class FailureAlertNotifier(SnsNotifier):
    """The provider's SnsNotifier, its templates rendered without the DAG's Jinja environment.

    The message needs none of the DAG's macros, and the callback context of dag.test() on
    Airflow >= 3.1 holds a SerializedDAG, which has no environment to give (apache/airflow#64649).
    """

    def get_template_env(self, dag: object = None) -> jinja2.Environment:
        return super().get_template_env(dag=None)


def failure_alert(topic_arn: str) -> SnsNotifier | None:
    """The DAG's on_failure_callback, or None when no topic is set (nothing is sent)."""
    if not topic_arn:
        return None
    return FailureAlertNotifier(
        aws_conn_id=AWS_CONN_ID, target_arn=topic_arn, subject=FAILURE_SUBJECT, message=FAILURE_MESSAGE
    )


def publish_rejected_files(topic_arn: str, dag_id: str, report: str) -> None:
    """The rejected-files report, to the alerts topic when one is set.

    A report that cannot be published is logged, not raised: the task still fails with the report.
    """
    if not topic_arn:
        return
    subject = f"Airflow: {dag_id} rejected raw files"
    try:
        SnsHook(aws_conn_id=AWS_CONN_ID).publish_to_target(target_arn=topic_arn, message=report, subject=subject)
    except Exception as error:  # any publishing error: the report itself is raised next
        log.error("The rejected-files report could not be published to %s: %s", topic_arn, error)
