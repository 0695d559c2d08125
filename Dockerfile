# One image for both local platforms:
#   astro dev start          the Astro CLI builds this file as an Astro project
#   docker compose up        docker-compose.yaml builds it for every Airflow service
#
# Astro Runtime 3.3 is Apache Airflow 3.3 (requirements-dev.txt pins the same
# minor for tests). Keep this FROM line literal: the Astro CLI reads the
# Runtime version from it, so it cannot come from a build ARG.
FROM astrocrpublic.azurecr.io/runtime:3.3-7

# By this line the Runtime image's ONBUILD steps have run, under plain
# `docker build` as under the Astro CLI:
#   COPY packages.txt      + apt-get install of the OS packages it lists
#   COPY requirements.txt  + pip install -r requirements.txt
#   COPY . /usr/local/airflow   (the project, minus .dockerignore)
# so dags/ and include/ live in AIRFLOW_HOME=/usr/local/airflow.

# The DAG imports `include.music_kpis...`: put the project root on the path
# for every Airflow process (scheduler, DAG processor, task runners).
ENV PYTHONPATH="/usr/local/airflow${PYTHONPATH:+:${PYTHONPATH}}"

# Fail the build, not the first DAG run, when requirements.txt does not give
# the project what it imports.
RUN PYTHONDONTWRITEBYTECODE=1 python -c "import include.music_kpis.tasks, include.music_kpis.operators"
