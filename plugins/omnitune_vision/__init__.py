"""Built-in vision plugin: timm backbones, image classification and image datasets."""
