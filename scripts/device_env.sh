# Sourced by the device scripts (bash): make the kit's packages importable on the GPU machine.
# Installs the wheels of .kit/wheels (made by `make device-kit`) into $KIT_SITE (default
# /tmp/kit-site) once, when segmentation-models-pytorch or albumentations is missing, and puts it
# and the repository on PYTHONPATH. PYTHON picks the interpreter (default python3). Returns 1,
# with a one-line error, when the packages are missing and the kit holds no wheels.
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import segmentation_models_pytorch, albumentations" 2> /dev/null; then
  if ! compgen -G ".kit/wheels/*.whl" > /dev/null; then
    echo "segmentation-models-pytorch or albumentations is missing and .kit/wheels holds no" \
      "wheels: run \`make device-kit\` and carry .kit" >&2
    return 1
  fi
  site=${KIT_SITE:-/tmp/kit-site}
  if [ ! -f "$site/.installed" ]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$site" .kit/wheels/*.whl || return 1
    touch "$site/.installed"
  fi
  export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
