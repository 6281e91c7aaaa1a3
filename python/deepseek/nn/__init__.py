"""``deepseek.nn``: ``Module``, ``Parameter``, layers, losses, ``functional``, ``init``,
``utils``."""

from .parameter import Parameter, Buffer  # noqa: F401
from .module import Module  # noqa: F401
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers_all  # noqa: F401
from .attention import *  # noqa: F401,F403
from .container import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .transformer import *  # noqa: F401,F403
from .recurrent import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .activation import *  # noqa: F401,F403
from .layers_extra import *  # noqa: F401,F403
from .layers_more import *  # noqa: F401,F403
from .lazy import *  # noqa: F401,F403
from .attention_maps import capture_attention  # noqa: F401
from . import functional, init, utils  # noqa: F401
from . import modules, parallel  # noqa: F401,E402  (torch.nn.modules.<file> paths, nn.parallel)
from .parallel import DataParallel  # noqa: F401,E402
from . import quantized  # noqa: F401
from . import intrinsic, qat  # noqa: F401,E402
