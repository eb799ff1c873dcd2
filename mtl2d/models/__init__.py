"""Flax models of the paper: ResNet1D (Figure 2), ResNet2D with templates (Figure 3).

ResNet1D            baseline encoder (Wang et al. 2017), `[B, L] -> [B, 128]`.
TemplateDistance    k learnable templates, `[B, n] -> [B, n, m, k]`.
ResNet2D            8 basic blocks + stride-2 convs, `[B, n, m, k] -> [B, F]`.
TemplateResNet2D    TemplateDistance + ResNet2D, the shared encoder of Figure 3d.
SiameseResNet1D     Figure 2c distance model, symmetric.
DistanceResNet2D    Figure 3c distance model (`score_matrix` scores a matrix).
MultiTaskModel      shared encoder + stacked masked task heads (Figures 2d, 3d).
FoldedBatchNorm     the batch norm of ResNet1D/2D (Flax-compatible variables, one scale and
                    shift per channel, float32 arithmetic).
models.padding      valid steps of zero-padded series (`lengths`): masks, pooling, strides.
classifier, distance_model   presets "paper", "quick", "tiny".
"""

from mtl2d.models.distance import DistanceResNet2D
from mtl2d.models.distance import SiameseResNet1D
from mtl2d.models.distance import pairwise_abs_distance
from mtl2d.models.factory import CLASSIFIER_ENCODERS
from mtl2d.models.factory import DISTANCE_MODELS
from mtl2d.models.factory import PRESETS
from mtl2d.models.factory import classifier
from mtl2d.models.factory import distance_model
from mtl2d.models.factory import preset_config
from mtl2d.models.multitask import MASKED_LOGIT
from mtl2d.models.multitask import MultiTaskModel
from mtl2d.models.multitask import StackedHeads
from mtl2d.models.norm import FoldedBatchNorm
from mtl2d.models.resnet1d import ResidualBlock1D
from mtl2d.models.resnet1d import ResNet1D
from mtl2d.models.resnet2d import DEFAULT_WIDTHS
from mtl2d.models.resnet2d import BasicBlock2D
from mtl2d.models.resnet2d import ResNet2D
from mtl2d.models.resnet2d import ResNet2DStage
from mtl2d.models.resnet2d import TemplateResNet2D
from mtl2d.models.templates import TEMPLATE_INITS
from mtl2d.models.templates import TemplateDistance
from mtl2d.models.templates import random_walk_init
from mtl2d.models.templates import replace_templates
from mtl2d.models.templates import template_distance
from mtl2d.models.templates import templates_from_series

__all__ = [
    "BasicBlock2D",
    "CLASSIFIER_ENCODERS",
    "DEFAULT_WIDTHS",
    "DISTANCE_MODELS",
    "DistanceResNet2D",
    "FoldedBatchNorm",
    "MASKED_LOGIT",
    "MultiTaskModel",
    "PRESETS",
    "ResNet1D",
    "ResNet2D",
    "ResNet2DStage",
    "ResidualBlock1D",
    "SiameseResNet1D",
    "StackedHeads",
    "TEMPLATE_INITS",
    "TemplateDistance",
    "TemplateResNet2D",
    "classifier",
    "distance_model",
    "pairwise_abs_distance",
    "preset_config",
    "random_walk_init",
    "replace_templates",
    "template_distance",
    "templates_from_series",
]
